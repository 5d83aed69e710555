"""One event sink in front of another: the MQTT publisher stays the loop's sink, listeners see each event too.

The daemon composes it when something besides MQTT wants the events (the web page's /events
stream, the /metrics counters): the loop keeps talking to one EventSink and knows nothing of
who listens. A listener runs on the loop's thread, so it must only hand the event on (append
to a bounded queue, bump a counter), never block; one that raises is logged (a failure that
recurs: once per 10 minutes, with how often) and the event goes on to the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import BrokerError
from .logs import RepeatedLog

if TYPE_CHECKING:
    from .pipeline import EventSink

log = logging.getLogger(__name__)

EventListener = Callable[[dict[str, Any]], None]


class TeeSink:
    """An EventSink that forwards to ``sink`` and then hands each event to every listener."""

    def __init__(self, sink: EventSink, listeners: tuple[EventListener, ...] = ()) -> None:
        self.sink = sink
        self.listeners = list(listeners)
        self._failures = RepeatedLog(log)

    def add_listener(self, listener: EventListener) -> None:
        """Hand every later event to ``listener`` as well."""
        self.listeners.append(listener)

    def counters(self) -> dict[str, Any]:
        """The sink's own counters (the listeners add none to the stats payload)."""
        return self.sink.counters()

    @property
    def fatal_error(self) -> BrokerError | None:
        """The sink's fatal error: a listener cannot end the loop."""
        return self.sink.fatal_error

    def publish_event(self, event: dict[str, Any]) -> None:
        """The sink first (the MQTT contract), then each listener."""
        self.sink.publish_event(event)
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                self._failures.log(logging.ERROR, f"listener {id(listener)}",
                                   "event listener %r failed on an event; the others still get it",
                                   listener, exc_info=True)

    def publish_stats(self, stats: dict[str, Any]) -> None:
        """Stats go to the sink only."""
        self.sink.publish_stats(stats)
