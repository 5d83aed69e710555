"""The page's routes as a WSGI application on Werkzeug: every answer, errors included, is JSON but
the page, its files, the event stream and the metrics.

    GET  /              the dashboard (its files: GET /static/..., fer_edge.web.assets)
    POST /predict       multipart/form-data field "image", or a raw image/* body
    GET  /healthz       200 with the loop's state, 503 when the camera, broker or loop is down
    GET  /preview.mjpg  annotated camera view (multipart/x-mixed-replace), when enabled
    GET  /events, /status, /history, /metrics   with the daemon: fer_edge.web.dashboard

Werkzeug parses the request (routing, forms, with a cap on parts and on form memory); the
server (fer_edge.web.server) has already bounded its size and time before it gets here.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http import HTTPStatus
from importlib import resources
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.formparser import parse_form_data
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import ClosingIterator

from ..errors import ImageError, ImageTooLargeError
from .access import AccessPolicy
from .assets import StaticFiles

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from ..photos import FacePredictor
    from .dashboard import Dashboard
    from .preview import PreviewFeed

log = logging.getLogger(__name__)

BOUNDARY = "fer-edge-frame"
HEALTH_KEYS = ("camera_up", "mqtt_connected", "loop_running")
MAX_FORM_PARTS = 8  # the page sends one; curl -F a few
MAX_FORM_MEMORY = 500_000  # bytes of a text field, and of what the parser buffers at once (Flask's default)


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


def json_response(status: int, payload: dict[str, Any], headers: Any = None) -> Response:
    """A JSON answer that no cache keeps."""
    response = Response(json.dumps(payload), status, headers, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


class UploadError(Exception):
    """A request /predict cannot serve: its HTTP status and a message for the client."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class WebApp:
    """The WSGI application: the access rules, then the route."""

    def __init__(self, predictor: FacePredictor, access: AccessPolicy, *, max_upload_bytes: int,
                 health: Callable[[], dict[str, Any]] | None = None, preview: PreviewFeed | None = None,
                 max_viewers: int = 1, stopping: threading.Event | None = None,
                 dashboard: Dashboard | None = None):
        self.predictor, self.access, self.max_upload_bytes = predictor, access, max_upload_bytes
        self.health, self.preview = health, preview
        self.stopping = stopping or threading.Event()
        # A viewer (of the preview, or of /events) holds a server thread for as long as it
        # watches; the others stay for uploads.
        self._viewers = threading.BoundedSemaphore(max_viewers)
        self.page = (resources.files("fer_edge.web") / "static" / "index.html").read_bytes()
        self.routes = Map([Rule("/", endpoint="page", methods=["GET"]),
                           Rule("/index.html", endpoint="page", methods=["GET"]),
                           Rule("/predict", endpoint="predict", methods=["POST"]),
                           Rule("/healthz", endpoint="healthz", methods=["GET"]),
                           Rule("/preview.mjpg", endpoint="preview", methods=["GET"]),
                           *StaticFiles().rules()])
        if dashboard is not None:
            dashboard.attach(self._viewers, self.stopping)
            for rule in dashboard.rules():
                self.routes.add(rule)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        """Serve one request (the WSGI entry point)."""
        return self.respond(environ)(environ, start_response)

    def respond(self, environ: WSGIEnvironment) -> Response:
        """The response to one request; never raises."""
        path = environ.get("PATH_INFO", "")
        refusal = self.access.refusal(environ)
        if refusal is not None:
            log.info("refused %s %s from %s: %s", environ.get("REQUEST_METHOD"), path,
                     environ.get("REMOTE_ADDR"), refusal.message)
            return json_response(refusal.status, {"error": refusal.message}, list(refusal.headers))
        try:
            endpoint, _ = self.routes.bind_to_environ(environ).match()
            # the dashboard's and the static files' rules carry their handler
            handler = endpoint if callable(endpoint) else getattr(self, f"on_{endpoint}")
            return handler(environ)
        except UploadError as err:
            return json_response(err.status, {"error": str(err)})
        except NotFound:
            return json_response(HTTPStatus.NOT_FOUND, {"error": f"no such resource: {path}"})
        except MethodNotAllowed as err:
            allowed = ", ".join(sorted(err.valid_methods or ()))
            message = ("POST an image to /predict" if path == "/predict" else
                       f"{environ.get('REQUEST_METHOD')} is not allowed on {path} (allowed: {allowed})")
            return json_response(HTTPStatus.METHOD_NOT_ALLOWED, {"error": message}, {"Allow": allowed})
        except HTTPException as err:
            return json_response(err.code or 400, {"error": err.description or err.name})
        except Exception:
            log.exception("%s %s failed", environ.get("REQUEST_METHOD"), path)
            return json_response(HTTPStatus.INTERNAL_SERVER_ERROR,
                                 {"error": "internal error; see the daemon's log"})

    def on_page(self, environ: WSGIEnvironment) -> Response:
        """The upload page."""
        return Response(self.page, mimetype="text/html", headers={"Cache-Control": "no-store"})

    def on_healthz(self, environ: WSGIEnvironment) -> Response:
        """The loop's state; 503 while something is down."""
        if self.health is None:
            raise NotFound()
        state = self.health()
        down = [key for key in HEALTH_KEYS if state.get(key) is False]
        return json_response(HTTPStatus.SERVICE_UNAVAILABLE if down else HTTPStatus.OK,
                             {"ok": not down, "down": down, **state})

    def on_predict(self, environ: WSGIEnvironment) -> Response:
        """Faces and expressions of the uploaded photo."""
        try:
            return json_response(HTTPStatus.OK, self.predictor.predict(self.read_image(environ)))
        except ImageTooLargeError as err:
            return json_response(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"the upload is {err}"})
        except ImageError as err:
            return json_response(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": f"the upload is {err}"})

    def read_image(self, environ: WSGIEnvironment) -> bytes:
        """The image bytes of a /predict body: the multipart "image" field, or a raw image body."""
        request = Request(environ)
        if request.content_length is not None and request.content_length > self.max_upload_bytes:
            # read (by the server, up to DRAIN_FACTOR x the limit) and refused: the client sees the 413
            raise UploadError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                              f"the upload is {request.content_length} bytes; the limit is "
                              f"{self.max_upload_bytes} (http.max_upload_bytes)")
        kind = request.mimetype
        if kind == "multipart/form-data":
            try:
                _, _, files = parse_form_data(environ, silent=False, max_form_parts=MAX_FORM_PARTS,
                                              max_form_memory_size=MAX_FORM_MEMORY,
                                              max_content_length=self.max_upload_bytes)
            except RequestEntityTooLarge:
                raise UploadError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                  f"the form has more than {MAX_FORM_PARTS} parts or more than "
                                  f"{MAX_FORM_MEMORY} bytes of fields; send the image alone") from None
            except ValueError:
                raise UploadError(HTTPStatus.BAD_REQUEST, "malformed multipart/form-data body") from None
            upload = files.get("image")
            if upload is None:
                raise UploadError(HTTPStatus.BAD_REQUEST, "the form has no 'image' field")
            return upload.read()
        if kind.startswith("image/") or kind == "application/octet-stream":
            body = request.get_data(cache=False)
            if not body:
                raise UploadError(HTTPStatus.BAD_REQUEST, "the request body is empty")
            return body
        raise UploadError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                          f"unsupported Content-Type {kind or '(none)'!r}: send multipart/form-data with "
                          "an 'image' field, or the image itself with an image/* Content-Type")

    def on_preview(self, environ: WSGIEnvironment) -> Response:
        """The annotated camera view, one JPEG part per new frame."""
        if self.preview is None:
            raise NotFound()
        if not self._viewers.acquire(blocking=False):
            return json_response(HTTPStatus.SERVICE_UNAVAILABLE,
                                 {"error": "the preview has as many viewers as it serves; close one"})
        # The server closes the stream when the viewer leaves (or the server stops): the slot is freed then.
        stream = ClosingIterator(self._frames(self.preview), self._viewers.release)
        return Response(stream, mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                        headers={"Cache-Control": "no-store"}, direct_passthrough=True)

    def _frames(self, preview: PreviewFeed) -> Iterator[bytes]:
        seq = 0
        while not self.stopping.is_set():
            latest = preview.wait_jpeg(seq, timeout=1.0)
            if latest is None:
                continue
            seq, jpeg = latest
            yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                   + jpeg + b"\r\n")
