"""The local HTTP server (opt-in): the page's WSGI application (fer_edge.web.app) on waitress.

waitress parses HTTP and bounds what a client can hold before the application sees a byte: it
reads bodies on one I/O thread and hands a request to a worker only once it is complete (so a
client that stalls mid-body holds no thread), refuses a body over ``http.max_upload_bytes`` and
any invalid Content-Length, cuts off clients silent for ``http.client_timeout`` seconds, stops
accepting beyond ``http.max_connections``, and runs at most ``http.threads`` requests at once.
Its own error answers (400, 413, 431, 501) are JSON here, like the application's.

It binds 127.0.0.1 unless ``http.host`` says otherwise; beyond loopback, set ``http.token_file``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..config import HttpConfig
from ..config.preflight import listen_address, web_extra_message
from ..config.secrets import http_token
from ..errors import ConfigError, EdgeError

try:  # the page is an extra, fer-edge[web]: without it, one line says so
    import werkzeug  # noqa: F401
    from waitress import wasyncore
    from waitress.adjustments import Adjustments
    from waitress.channel import HTTPChannel
    from waitress.server import TcpWSGIServer
    from waitress.task import ErrorTask, ThreadedTaskDispatcher
except ImportError as exc:
    raise EdgeError(web_extra_message(str(exc.name))) from None

from ..photos import FacePredictor
from .access import AccessPolicy
from .app import LoopHealth, WebApp
from .guard import parser_class, too_many, turn_away

if TYPE_CHECKING:
    from ..config import Config
    from .dashboard import Dashboard
    from .preview import PreviewFeed

__all__ = ["LocalHttpServer", "LoopHealth", "build_http_server"]

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 16 * 1024

# A body up to this many times http.max_upload_bytes is read (waitress spools it past 512 KiB)
# and answered by the application with a JSON 413. A larger one is refused by waitress as it is
# declared, and the connection closed: a client still sending may then see a reset instead.
DRAIN_FACTOR = 4


class _JsonErrorTask(ErrorTask):
    """waitress's answer to a request it refuses itself, as JSON like every other error."""

    def execute(self) -> None:
        error = self.request.error
        limit = self.channel.server.adj.max_request_body_size // DRAIN_FACTOR
        length = self.request.headers.get("CONTENT_LENGTH", "")
        if error.code == 413:
            size = f"{length} bytes" if length.isdigit() else "larger"
            message = f"the upload is {size}; the limit is {limit} (http.max_upload_bytes)"
        elif error.code == 431:
            message = f"the request's headers are over {MAX_HEADER_BYTES} bytes"
        else:
            message = f"{error.reason.lower()}: {error.body}"
        body = json.dumps({"error": message}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend([("Content-Type", "application/json"), ("Cache-Control", "no-store")])
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _Channel(HTTPChannel):
    error_task_class = _JsonErrorTask


class _Server(TcpWSGIServer):
    channel_class = _Channel
    per_client = 8  # connections one address may hold: http.max_connections_per_client

    def accept(self) -> tuple[socket.socket, Any] | None:
        """The next connection, unless its address already holds ``per_client``: that one is turned away."""
        pair = super().accept()
        if pair is not None and too_many(self._map.values(), pair[1][0], self.per_client):
            turn_away(pair[0], pair[1][0])
            return None
        return pair



def _listen(settings: HttpConfig) -> socket.socket:
    """A socket bound where ``http.host`` and ``http.port`` say (IPv4 or IPv6), or an EdgeError."""
    try:
        family, address = listen_address(settings)
    except ConfigError as exc:
        raise EdgeError("; ".join(exc.problems)) from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        remedy = ("choose another http.port or stop what uses it" if exc.errno == 98 else
                  "use an address of this machine (127.0.0.1, ::1, 0.0.0.0 or ::) for http.host")
        raise EdgeError(f"http: cannot listen on {settings.host}:{settings.port} "
                        f"({exc.strerror or exc}); {remedy}") from None
    return sock


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class LocalHttpServer:
    """The page on waitress; ``start()`` serves on a thread, ``stop()`` ends streams and closes."""

    def __init__(self, predictor: FacePredictor, settings: HttpConfig | None = None, *,
                 health: Callable[[], dict[str, Any]] | None = None, preview: PreviewFeed | None = None,
                 token: str | None = None, dashboard: Dashboard | None = None):
        settings = settings or HttpConfig()
        self.settings = settings
        self.stopping = threading.Event()
        access = AccessPolicy.for_listener(settings.host, settings.allowed_hosts, token)
        self.app = WebApp(predictor, access, max_upload_bytes=settings.max_upload_bytes, health=health,
                          preview=preview, max_viewers=max(1, settings.threads - 1), stopping=self.stopping,
                          dashboard=dashboard)
        sock = _listen(settings)
        adjustments = Adjustments(
            sockets=[sock], threads=settings.threads, ident="fer-edge",
            # waitress counts its listening socket and wake-up pipe among the connections
            connection_limit=settings.max_connections + 2,
            channel_timeout=settings.client_timeout, cleanup_interval=1,
            max_request_body_size=settings.max_upload_bytes * DRAIN_FACTOR,
            max_request_header_size=MAX_HEADER_BYTES,
            # a preview viewer that stops reading blocks its own thread, not the device's memory
            outbuf_high_watermark=1 << 20, asyncore_use_poll=True, clear_untrusted_proxy_headers=True,
            recv_bytes=1 << 16,  # 8 KiB by default: a 5 MB body in 600 turns of the I/O loop
            # keep reading while a request runs, so a stream (preview, /events) whose client has
            # gone is seen at once (environ["waitress.client_disconnected"]) and frees its slot
            channel_request_lookahead=1)
        self._map: dict[int, Any] = {}
        self._dispatcher = ThreadedTaskDispatcher()
        self._dispatcher.set_thread_count(settings.threads)
        sockinfo = (sock.family, sock.type, sock.proto, sock.getsockname())
        # framing, 100-continue and per-address rules of fer_edge.web.guard
        channel = type("GuardedChannel", (_Channel,),
                       {"parser_class": parser_class(access, settings.max_upload_bytes)})
        server = type("GuardedServer", (_Server,), {"channel_class": channel,
                                                  "per_client": settings.max_connections_per_client})
        self._server = server(self.app, self._map, _sock=sock, dispatcher=self._dispatcher, adj=adjustments,
                              bind_socket=False, sockinfo=sockinfo)
        self._thread: threading.Thread | None = None
        self._closing = threading.Lock()  # I/O thread closes the trigger under it; stop() pulls it so
        self._closed = False

    @property
    def server_address(self) -> tuple[str, int]:
        """The address and port it listens on (port 0 in the settings: the one the kernel chose)."""
        host, port = self._server.socket.getsockname()[:2]
        return host, port

    @property
    def url(self) -> str:
        """Where the server listens, e.g. http://127.0.0.1:8080/ or http://[::1]:8080/."""
        host, port = self.server_address
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def start(self) -> LocalHttpServer:
        """Serve on a daemon thread; log where, and warn when it is reachable beyond this machine."""
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)
        self._thread.start()
        preview = "on" if self.app.preview else "off"
        if _loopback(self.server_address[0]):
            log.info("HTTP server on %s (preview %s)", self.url, preview)
        else:
            log.warning("HTTP server on %s (preview %s) is reachable from the network; %s", self.url, preview,
                        "it requires the token of http.token_file" if self.app.access.token else
                        "anyone who reaches it can use it: set http.token_file")
        return self

    def _serve(self) -> None:
        while not self.stopping.is_set():
            wasyncore.loop(timeout=1.0, map=self._map, use_poll=True, count=1)
        with self._closing:
            wasyncore.close_all(self._map)
            self._closed = True

    def stop(self) -> None:
        """Stop serving and close every connection; preview streams end within a second."""
        with self._closing:
            self.stopping.set()
            if self._thread is not None and not self._closed:
                self._server.pull_trigger()  # wake the I/O loop (a closed one needs none)
        if self._thread is not None:
            self._thread.join(timeout=5)
        else:
            wasyncore.close_all(self._map)
        self._dispatcher.shutdown(timeout=5)


def build_http_server(config: Config, *, health: Callable[[], dict[str, Any]] | None = None,
                      preview: PreviewFeed | None = None,
                      dashboard: Dashboard | None = None) -> LocalHttpServer:
    """The server the [http] and [images] tables describe, listening but not yet serving."""
    return LocalHttpServer(FacePredictor.from_config(config), config.http, health=health, preview=preview,
                           token=http_token(config.http), dashboard=dashboard)
