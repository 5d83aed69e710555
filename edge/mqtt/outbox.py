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
from dataclasses import dataclass
from typing import NamedTuple


class Outgoing(NamedTuple):
    """One message as it is handed to the client."""

    topic: str
    payload: bytes
    qos: int
    retain: bool

    def size(self) -> int:
        """Bytes of topic and payload: how messages compare in size."""
        return len(self.topic.encode()) + len(self.payload)


@dataclass(frozen=True)
class Delivery:
    """What became of the publisher's messages so far: the stats fields and the closing log line."""

    events_acked: int = 0  # events the broker acknowledged (QoS 1 and 2)
    events_dropped: int = 0  # events lost to a full queue, or sent at QoS 0 with no connection
    events_unsent: int = 0  # events still queued or unacknowledged when the publisher stopped
    refused: int = 0  # messages of any kind the broker refused (MQTT 5 PUBACK reason codes)
    stats_dropped: int = 0  # stats snapshots that found no connection (QoS 0: never queued)
    queued: int = 0  # messages waiting for the broker now

    def stats_fields(self) -> dict[str, int]:
        """The stats payload's delivery fields: events lost apart from stats snapshots lost."""
        return {"mqtt_queued": self.queued, "mqtt_acked": self.events_acked,
                "mqtt_dropped": self.events_dropped, "mqtt_refused": self.refused,
                "mqtt_stats_dropped": self.stats_dropped}


class Outbox:
    """Thread-safe: ``put`` runs on the loop's thread, acknowledgements arrive on paho's."""

    def __init__(self, capacity: int, window: int) -> None:
        if capacity < 1 or window < 1:
            raise ValueError(f"outbox capacity and window must be at least 1, not {capacity}, {window}")
        self.capacity, self.window = capacity, window
        self._changed = threading.Condition()
        self._pending: collections.deque[Outgoing] = collections.deque()
        self._unacked: dict[int, Outgoing | None] = {}
        # Acknowledgements (and refusals, with their reason) are recorded apart and folded in
        # later: an ack can arrive before the client call that hands us its message id has returned.
        self._acked: collections.deque[tuple[int, str | None]] = collections.deque()
        self._refusals: list[tuple[Outgoing, str]] = []
        self._resending = False
        # Taken and being handed to the client, which may send it (and see the connection end on
        # it) before the call that gives us its message id returns: still outstanding meanwhile.
        self._in_hand: Outgoing | None = None
        self.largest_acked = 0  # the size() of the largest message the broker has acknowledged
        self.dropped = 0  # messages dropped because the outbox was full
        # Per topic, so the publisher can tell events from status and discovery messages.
        self.dropped_on: collections.Counter[str] = collections.Counter()
        self.acked_on: collections.Counter[str] = collections.Counter()
        self.refused_on: collections.Counter[str] = collections.Counter()
        self.offline_on: collections.Counter[str] = collections.Counter()  # QoS 0, sent with no connection

    @property
    def queued(self) -> int:
        """Messages waiting to be handed to the client."""
        return len(self._pending)

    def put(self, message: Outgoing) -> bool:
        """Queue a message; True when the outbox was full and its oldest message was dropped."""
        with self._changed:
            full = len(self._pending) >= self.capacity
            if full:
                self.dropped_on[self._pending.popleft().topic] += 1
                self.dropped += 1
            self._pending.append(message)
        return full

    def take(self, can_send: bool) -> Outgoing | None:
        """The next message to hand to the client, or None while ``can_send`` is False, nothing
        waits, the window is full, or the client is still re-sending after a reconnect."""
        with self._changed:
            self._fold()
            # After a reconnect the client first re-sends what was unacknowledged; keep the order.
            self._resending = self._resending and bool(self._unacked)
            if self._resending or not can_send or not self._pending or len(self._unacked) >= self.window:
                self._changed.notify_all()
                return None
            self._in_hand = self._pending.popleft()
            return self._in_hand

    def handed(self, message_id: int, message: Outgoing | None = None) -> None:
        """The client took ``message`` (it re-sends it itself until acknowledged)."""
        with self._changed:
            self._unacked[message_id] = message
            if message is not None:
                self._in_hand = None

    def put_back(self, message: Outgoing) -> None:
        """The client refused a message for now (its own queue is full): first in line again."""
        with self._changed:
            self._in_hand = None
            self._pending.appendleft(message)

    def acknowledged(self, message_id: int, refusal: str | None = None) -> None:
        """The broker acknowledged a message, or refused it for ``refusal`` (on the client's thread)."""
        self._acked.append((message_id, refusal))

    def refuse(self, message: Outgoing, reason: str) -> None:
        """A message refused before it was sent (over the broker's packet size): counted as refused."""
        with self._changed:
            if message is self._in_hand:
                self._in_hand = None
            self.refused_on[message.topic] += 1
            self._refusals.append((message, reason))

    def largest_unacked(self) -> tuple[int | None, Outgoing] | None:
        """The largest message handed to the client and not yet acknowledged (the oldest of equals),
        with its message id (None: being handed, no id yet); None when nothing is outstanding."""
        with self._changed:
            self._fold()
            handed: list[tuple[int | None, Outgoing]] = [
                (mid, m) for mid, m in self._unacked.items() if m is not None]
            if self._in_hand is not None:
                handed.append((None, self._in_hand))
            return max(handed, key=lambda item: item[1].size(), default=None)

    def give_up(self, message_id: int) -> Outgoing | None:
        """Stop waiting for a handed message the broker will never take: counted as refused."""
        with self._changed:
            self._fold()
            message = self._unacked.pop(message_id, None)
            if message is not None:
                self.refused_on[message.topic] += 1
            self._changed.notify_all()
            return message

    def count_offline(self, topic: str) -> None:
        """A QoS 0 message on ``topic`` found no connection: it never enters the outbox, only this count."""
        with self._changed:
            self.offline_on[topic] += 1

    def delivery(self, events: str, stats: str, *, refused_elsewhere: int = 0,
                 events_unsent: int = 0) -> Delivery:
        """The counts, with ``events`` and ``stats`` naming the event and stats topics."""
        with self._changed:
            return Delivery(events_acked=self.acked_on[events],
                            events_dropped=self.dropped_on[events] + self.offline_on[events],
                            events_unsent=events_unsent,
                            refused=sum(self.refused_on.values()) + refused_elsewhere,
                            stats_dropped=self.offline_on[stats], queued=len(self._pending))

    def settled_on(self, topic: str) -> tuple[int, int]:
        """Messages on ``topic`` the broker has acknowledged, and refused, so far."""
        with self._changed:
            self._fold()
            return self.acked_on[topic], self.refused_on[topic]

    def take_refusals(self) -> list[tuple[Outgoing, str]]:
        """The messages refused since the last call, with the broker's reason."""
        with self._changed:
            refusals, self._refusals = self._refusals, []
            return refusals

    def unsettled(self) -> list[Outgoing]:
        """Every message not yet acknowledged: waiting here, or handed to the client (when known)."""
        with self._changed:
            self._fold()
            handed = [m for m in self._unacked.values() if m is not None]
            return handed + list(self._pending)

    def _fold(self) -> None:
        # With self._changed held: settle the acknowledgements recorded since the last fold.
        while self._acked:
            message_id, refusal = self._acked.popleft()
            message = self._unacked.pop(message_id, None)
            if message is None:
                continue  # QoS 0, or handed without saying which message
            if refusal is None:
                self.acked_on[message.topic] += 1
                self.largest_acked = max(self.largest_acked, message.size())
            else:
                self.refused_on[message.topic] += 1
                self._refusals.append((message, refusal))

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
