"""The publisher's outbox: a drop-oldest queue of QoS 1/2 messages and a window of unacknowledged ones.

It knows nothing of paho or sockets, so it can be tested on its own. Messages wait here while
the broker is away; at most ``window`` are handed to the client unacknowledged at a time, and
when ``capacity`` messages wait, the oldest is dropped and counted: paho's own queue would
refuse the newest instead, and a camera's newest event is the one worth keeping.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import NamedTuple


class Outgoing(NamedTuple):
    """One message as it is handed to the client."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


class Outbox:
    """Thread-safe: ``put`` runs on the loop's thread, acknowledgements arrive on paho's."""

    def __init__(self, capacity: int, window: int) -> None:
        if capacity < 1 or window < 1:
            raise ValueError(f"outbox capacity and window must be at least 1, not {capacity}, {window}")
        self.capacity, self.window = capacity, window
        self._changed = threading.Condition()
        self._pending: collections.deque[Outgoing] = collections.deque()
        self._unacked: set[int] = set()
        # Acknowledgements are recorded apart and folded in later: an ack can arrive before
        # the client call that hands us its message id has returned.
        self._acked: collections.deque[int] = collections.deque()
        self._resending = False
        self.dropped = 0  # messages dropped because the outbox was full

    @property
    def queued(self) -> int:
        """Messages waiting to be handed to the client."""
        return len(self._pending)

    def put(self, message: Outgoing) -> bool:
        """Queue a message; True when the outbox was full and its oldest message was dropped."""
        with self._changed:
            full = len(self._pending) >= self.capacity
            if full:
                self._pending.popleft()
                self.dropped += 1
            self._pending.append(message)
        return full

    def take(self, can_send: bool) -> Outgoing | None:
        """The next message to hand to the client, or None while ``can_send`` is False, nothing
        waits, the window is full, or the client is still re-sending after a reconnect."""
        with self._changed:
            while self._acked:
                self._unacked.discard(self._acked.popleft())
            # After a reconnect the client first re-sends what was unacknowledged; keep the order.
            self._resending = self._resending and bool(self._unacked)
            if self._resending or not can_send or not self._pending or len(self._unacked) >= self.window:
                self._changed.notify_all()
                return None
            return self._pending.popleft()

    def handed(self, message_id: int) -> None:
        """The client took a message (it re-sends it itself until acknowledged)."""
        with self._changed:
            self._unacked.add(message_id)

    def put_back(self, message: Outgoing) -> None:
        """The client refused a message for now (its own queue is full): first in line again."""
        with self._changed:
            self._pending.appendleft(message)

    def acknowledged(self, message_id: int) -> None:
        """The broker acknowledged a message (called on the client's network thread)."""
        self._acked.append(message_id)

    def reconnected(self) -> None:
        """The client is about to re-send its unacknowledged messages; hold new ones back."""
        with self._changed:
            self._resending = True

    def wake(self) -> None:
        """Let ``wait_until_empty`` re-check its condition (e.g. the connection went away)."""
        with self._changed:
            self._changed.notify_all()

    def wait_until_empty(self, timeout: float, give_up: Callable[[], bool]) -> bool:
        """Wait until every message is acknowledged, or ``give_up()``; False on timeout."""
        with self._changed:
            return self._changed.wait_for(
                lambda: give_up() or not (self._pending or self._unacked or self._acked), timeout)
