"""``GET /events``: the MQTT topic's events as Server-Sent Events, each reader with a bounded queue.

The loop hands each event to ``EventHub.publish`` (through fer_edge.fanout.TeeSink); it is
turned into one SSE message there, once, and appended to every reader's queue, which never
blocks the loop. A reader that falls behind loses its oldest messages and is told how many in
an ``event: dropped`` message before the next one it gets. Readers that asked for the live view
(``?live=1``, the dashboard) also get ``event: faces``: the newest snapshot of the faces in view,
a slot of one per reader (a stale one is worth nothing, so it is replaced, not queued).

How many may read at once is the server's business (fer_edge.web.app shares its stream slots
between preview viewers and readers; past them, 503).
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

KEEPALIVE = 15.0  # seconds between comments on a quiet stream: a reader that left is noticed then
RETRY_MS = 2000  # the browser's EventSource reconnects after this


def sse(data: Any, *, event: str | None = None, event_id: int | None = None) -> bytes:
    """One Server-Sent Events message with ``data`` as compact JSON."""
    head = (f"event: {event}\n" if event else "") + (f"id: {event_id}\n" if event_id is not None else "")
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class Reader:
    """One /events client's queue: messages in order, the oldest dropped (and counted) when full."""

    def __init__(self, queue_size: int, live: bool) -> None:
        self.queue: collections.deque[bytes] = collections.deque(maxlen=queue_size)
        self.live = live
        self.missed = 0  # messages dropped since the reader was last told
        self.latest: dict[str, bytes] = {}  # live snapshots by event name, newest only

    def push(self, message: bytes) -> None:
        """Append, dropping the oldest when full (the caller holds the hub's lock)."""
        if len(self.queue) == self.queue.maxlen:
            self.missed += 1
        self.queue.append(message)

    def take(self) -> bytes:
        """Everything pending as one chunk: the drop notice first, then events, then live snapshots."""
        parts = []
        if self.missed:
            parts.append(sse({"dropped": self.missed, "reason": "this reader fell behind; the oldest "
                              "events were dropped"}, event="dropped"))
            self.missed = 0
        parts.extend(self.queue)
        self.queue.clear()
        parts.extend(self.latest.values())
        self.latest.clear()
        return b"".join(parts)

    def pending(self) -> bool:
        """Whether ``take`` has something to give."""
        return bool(self.queue or self.missed or self.latest)


class EventHub:
    """Fans events out to /events readers; keeps the last few for a page that has just opened."""

    def __init__(self, queue_size: int = 256, recent: int = 50) -> None:
        self.queue_size = queue_size
        self._cond = threading.Condition()
        self._readers: list[Reader] = []
        self._recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=recent)
        self._next_id = 0
        self.published = 0

    @property
    def readers(self) -> int:
        """Readers connected now."""
        with self._cond:
            return len(self._readers)

    def publish(self, event: dict[str, Any]) -> None:
        """Queue one event for every reader (runs on the loop's thread; never blocks for long)."""
        with self._cond:
            self._next_id += 1
            self.published += 1
            self._recent.append(event)
            if self._readers:
                message = sse(event, event_id=self._next_id)
                for reader in self._readers:
                    reader.push(message)
                self._cond.notify_all()

    def publish_live(self, name: str, data: Any) -> None:
        """Offer a live snapshot (e.g. the faces in view) to the readers that asked for it."""
        with self._cond:
            live = [reader for reader in self._readers if reader.live]
            if live:
                message = sse(data, event=name)
                for reader in live:
                    reader.latest[name] = message
                self._cond.notify_all()

    def recent(self) -> list[dict[str, Any]]:
        """The last events published, oldest first."""
        with self._cond:
            return list(self._recent)

    def stream(self, stopping: threading.Event, *, live: bool = False, keepalive: float = KEEPALIVE,
               gone: Callable[[], bool] = lambda: False) -> Iterator[bytes]:
        """The body of one /events response; ends when ``stopping`` is set or ``gone()`` (the client left)."""
        reader = Reader(self.queue_size, live)
        with self._cond:
            self._readers.append(reader)
        try:
            yield f"retry: {RETRY_MS}\n\n".encode()
            quiet_since = time.monotonic()
            while not stopping.is_set() and not gone():
                with self._cond:
                    # a timeout, so that `stopping` is seen within a second
                    self._cond.wait_for(reader.pending, timeout=1.0)
                    chunk = reader.take()
                if chunk:
                    quiet_since = time.monotonic()
                    yield chunk  # the server writes it out; a slow client blocks here, not the loop
                elif time.monotonic() - quiet_since >= keepalive:
                    quiet_since = time.monotonic()
                    yield b": keepalive\n\n"
        finally:
            with self._cond:
                self._readers.remove(reader)
