"""The live side of the page: ``/events`` (SSE), ``/status``, ``/history`` and ``/metrics``.

The daemon builds one Dashboard from its parts (the event hub, the live state, the metrics and
what it knows of itself) and hands it to the server; fer_edge.web.app adds these routes behind
the same access rules as every other, and lends ``/events`` one of its stream slots.

    GET /events     the MQTT topic's events as text/event-stream; ?live=1 adds "faces" snapshots
    GET /status     {"about": ..., "stats": the stats payload as of the last second}
    GET /history    {"timeline": one sample a second of the last minutes, "events": the last events}
    GET /metrics    Prometheus text format
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import ClosingIterator

from .metrics import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from .events import EventHub
    from .live import LiveState
    from .metrics import DaemonMetrics


def _json(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload), status, mimetype="application/json",
                    headers={"Cache-Control": "no-store"})


class Dashboard:
    """Route handlers over the daemon's hub, live state and metrics."""

    def __init__(self, hub: EventHub, live: LiveState, metrics: DaemonMetrics | None,
                 about: Callable[[], dict[str, Any]]) -> None:
        self.hub, self.live, self.metrics, self.about = hub, live, metrics, about
        # Lent by the server (attach): its stream slots and its stop flag.
        self._slots: threading.BoundedSemaphore | None = None
        self._stopping = threading.Event()

    def attach(self, slots: threading.BoundedSemaphore, stopping: threading.Event) -> None:
        """Share the server's stream slots (a reader holds a server thread) and its stop flag."""
        self._slots, self._stopping = slots, stopping

    def rules(self) -> list[Rule]:
        """The routes, each rule's endpoint its handler."""
        return [Rule("/events", endpoint=self.on_events, methods=["GET"]),
                Rule("/status", endpoint=self.on_status, methods=["GET"]),
                Rule("/history", endpoint=self.on_history, methods=["GET"]),
                Rule("/metrics", endpoint=self.on_metrics, methods=["GET"])]

    def on_events(self, environ: WSGIEnvironment) -> Response:
        """The event stream; 503 while every stream slot is taken."""
        if self._slots is None or not self._slots.acquire(blocking=False):
            return _json(HTTPStatus.SERVICE_UNAVAILABLE,
                         {"error": "every stream slot is taken (event readers and preview viewers share "
                                   "http.threads - 1); close one, or raise http.threads"})
        live = Request(environ).args.get("live") == "1"
        # waitress says when the client has gone (and closes the stream when the server stops):
        # the slot is freed then
        gone = environ.get("waitress.client_disconnected", lambda: False)
        stream = ClosingIterator(self.hub.stream(self._stopping, live=live, gone=gone), self._slots.release)
        return Response(stream, mimetype="text/event-stream", direct_passthrough=True,
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    def on_status(self, environ: WSGIEnvironment) -> Response:
        """What the daemon runs and its latest stats."""
        return _json(HTTPStatus.OK, {"about": self.about(), "stats": self.live.stats})

    def on_history(self, environ: WSGIEnvironment) -> Response:
        """The timeline of the last minutes and the last events, for a page that has just opened."""
        return _json(HTTPStatus.OK, {"timeline": self.live.timeline(), "events": self.hub.recent(),
                                     "faces": self.live.faces})

    def on_metrics(self, environ: WSGIEnvironment) -> Response:
        """The Prometheus exposition; 404 without metrics."""
        if self.metrics is None:
            return _json(HTTPStatus.NOT_FOUND, {"error": "no such resource: /metrics"})
        return Response(self.metrics.exposition(), content_type=CONTENT_TYPE_LATEST,
                        headers={"Cache-Control": "no-store"})
