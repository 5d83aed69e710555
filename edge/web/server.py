"""The local HTTP server (opt-in): an upload page, /predict, /healthz and /preview.mjpg.

Standard library only: a ThreadingHTTPServer on a daemon thread. It has no authentication,
so it binds 127.0.0.1 unless ``http.host`` says otherwise; put a reverse proxy with TLS and
a login in front of it before exposing it to a network.

    GET  /              upload page: pick a photo, see the faces drawn and the JSON
    POST /predict       multipart/form-data field "image", or a raw image/* body
    GET  /healthz       200 with the loop's state, 503 when the camera, broker or loop is down
    GET  /preview.mjpg  annotated camera view (multipart/x-mixed-replace), when enabled

Errors are JSON ``{"error": "..."}``: 400 malformed request or no "image" field, 404, 411 no
Content-Length, 413 body over ``max_upload_bytes``, 415 other content types, 422 bytes that do
not decode as an image. A photo without a face is not an error: 200 with ``"faces": []``.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..errors import EdgeError
from ..photos import FacePredictor, ImageError

if TYPE_CHECKING:
    from ..config import Config
    from .preview import PreviewFeed

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD = 5_000_000
# A declared body larger than this is not even read before the 413: the connection is closed.
DRAIN_LIMIT = 64 * 1024 * 1024
BOUNDARY = "fer-edge-frame"
HEALTH_KEYS = ("camera_up", "mqtt_connected", "loop_running")


class UploadError(Exception):
    """A request /predict cannot serve: its HTTP status and a message for the client."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class LoopHealth:
    """The loop's latest state for /healthz: the loop thread updates it, request threads read it."""

    def __init__(self, stale_after: float = 5.0, clock: Callable[[], float] = time.monotonic):
        # The loop updates at least twice a second; silence this long means it is stuck.
        self.stale_after = stale_after
        self._clock = clock
        self._state: dict[str, Any] = {}
        self._updated: float | None = None

    def update(self, **state: Any) -> None:
        """Replace the state (fps, faces, frames, camera_up, mqtt_connected)."""
        self._state, self._updated = state, self._clock()

    def __call__(self) -> dict[str, Any]:
        """The last state, with ``loop_running`` false when it is stale (or was never set)."""
        age = None if self._updated is None else self._clock() - self._updated
        return {**self._state, "loop_running": age is not None and age <= self.stale_after}


def read_image_upload(content_type: str, body: bytes) -> bytes:
    """The image bytes of a /predict body: the multipart "image" field, or a raw image body."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        # The email package is the standard library's MIME parser (cgi is gone in 3.13).
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
        if not message.is_multipart() or message.defects:
            raise UploadError(HTTPStatus.BAD_REQUEST, "malformed multipart/form-data body")
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "image":
                payload = part.get_payload(decode=True)
                return payload if isinstance(payload, bytes) else b""
        raise UploadError(HTTPStatus.BAD_REQUEST, "the form has no 'image' field")
    if kind.startswith("image/") or kind == "application/octet-stream":
        if not body:
            raise UploadError(HTTPStatus.BAD_REQUEST, "the request body is empty")
        return body
    raise UploadError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                      f"unsupported Content-Type {kind or '(none)'!r}: send multipart/form-data with "
                      "an 'image' field, or the image itself with an image/* Content-Type")


class _Handler(BaseHTTPRequestHandler):
    server: LocalHttpServer
    timeout = 30  # seconds a client may stall mid-request before its thread is freed
    server_version = "fer-edge"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")
        elif path == "/healthz" and self.server.health is not None:
            state = self.server.health()
            down = [key for key in HEALTH_KEYS if state.get(key) is False]
            status = HTTPStatus.SERVICE_UNAVAILABLE if down else HTTPStatus.OK
            self._json(status, {"ok": not down, "down": down, **state})
        elif path == "/preview.mjpg" and self.server.preview is not None:
            self._stream_preview(self.server.preview)
        elif path == "/predict":
            self._json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "POST an image to /predict"},
                       {"Allow": "POST"})
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such resource: {path}"})

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/predict":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such resource: {self.path}"})
            return
        try:
            body = self._read_body(self.server.max_upload_bytes)
            result = self.server.predictor.predict(read_image_upload(self.headers.get("Content-Type", ""),
                                                                     body))
        except ImageError as err:
            self._json(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": f"the upload is {err}"})
            return
        except UploadError as err:
            self._json(err.status, {"error": str(err)})
            return
        except Exception:
            log.exception("/predict failed")
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error; see the daemon's log"})
            return
        self._json(HTTPStatus.OK, result)

    def _read_body(self, limit: int) -> bytes:
        try:
            length = int(self.headers["Content-Length"])
        except (TypeError, ValueError):
            raise UploadError(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length header") from None
        if length > limit:
            # Read what was sent before answering, so the client is not reset mid-upload and
            # sees the 413; a body far too large is not worth reading at all.
            remaining = length if length <= DRAIN_LIMIT else 0
            while remaining > 0 and (chunk := self.rfile.read(min(1 << 16, remaining))):
                remaining -= len(chunk)
            self.close_connection = True
            raise UploadError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                              f"the upload is {length} bytes; the limit is {limit} (http.max_upload_bytes)")
        body = self.rfile.read(length)
        if len(body) < length:
            raise UploadError(HTTPStatus.BAD_REQUEST, f"body ended after {len(body)} of {length} bytes")
        return body

    def _stream_preview(self, preview: PreviewFeed) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        seq = 0
        try:
            while not self.server.stopping.is_set():
                latest = preview.wait_jpeg(seq, timeout=1.0)
                if latest is None:
                    continue
                seq, jpeg = latest
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                 f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                self.wfile.flush()
        except OSError:  # the viewer left, or stalled past the socket timeout
            log.debug("preview viewer %s left", self.client_address[0])

    def _json(self, status: HTTPStatus, payload: dict[str, Any],
              headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address[0], format % args)


class LocalHttpServer(ThreadingHTTPServer):
    """The HTTP server; ``start()`` serves on a daemon thread, ``stop()`` ends streams and closes."""

    daemon_threads = True  # a preview viewer must not hold up the daemon's exit

    def __init__(self, predictor: FacePredictor, *, host: str = "127.0.0.1", port: int = 8080,
                 max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
                 health: Callable[[], dict[str, Any]] | None = None, preview: PreviewFeed | None = None):
        self.predictor, self.max_upload_bytes = predictor, max_upload_bytes
        self.health, self.preview = health, preview
        self.page = (resources.files("fer_edge.web") / "static" / "index.html").read_bytes()
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        """Where the server listens, e.g. http://127.0.0.1:8080/."""
        host, port = self.server_address[:2]
        return "http://" + str(host) + f":{port}/"

    def start(self) -> LocalHttpServer:
        """Serve on a daemon thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        self._thread.start()
        log.info("HTTP server on %s (preview %s)", self.url, "on" if self.preview else "off")
        return self

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a failed request (socketserver would print the traceback on stderr)."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("HTTP client %s hung up", client_address[0])
        else:
            log.warning("HTTP request from %s failed", client_address[0], exc_info=True)

    def stop(self) -> None:
        """Stop serving and close the socket; preview streams end within a second."""
        self.stopping.set()
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=2)
        self.server_close()


def build_http_server(config: Config, *, health: Callable[[], dict[str, Any]] | None = None,
                      preview: PreviewFeed | None = None) -> LocalHttpServer:
    """The server the [http] table describes, listening but not yet serving."""
    http = config.http
    predictor = FacePredictor.from_config(config)
    try:
        return LocalHttpServer(predictor, host=http.host, port=http.port,
                               max_upload_bytes=http.max_upload_bytes, health=health, preview=preview)
    except OSError as exc:
        raise EdgeError(f"http: cannot listen on {http.host}:{http.port} ({exc.strerror or exc}); "
                        "choose another http.port or stop what uses it") from None
