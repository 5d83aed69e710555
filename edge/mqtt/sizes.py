"""The broker's limits on message size: messages over them are dropped and counted, not sent.

A message over the broker's limit ends the connection when it is sent, and paho sends it again
first on every reconnect, so nothing behind it would ever arrive. Two limits are known: the
Maximum Packet Size an MQTT 5 broker announces in its CONNACK, and a bound learned from a broker
that announces none but keeps closing the connection on one message (``SizeLimits.closed``).
Messages over either are dropped before sending, counted as refused in the outbox.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import paho.mqtt.client as mqtt

from . import reasons
from .client import forget_unacknowledged
from .health import SHORT_SESSION_S
from .outbox import Outbox, Outgoing
from .reasons import Endpoint

log = logging.getLogger(__name__)

# A message outstanding at this many closes in a row, the broker ending each connection that sent
# it again within SHORT_SESSION_S, is one the broker will not take: dropped (SizeLimits.closed).
CLOSES_BEFORE_DROP = 2


class SizeLimits:
    """The publisher's size checks; ``too_large`` runs on either thread, the rest on paho's."""

    def __init__(self, outbox: Outbox, endpoint: Endpoint) -> None:
        self._outbox, self._endpoint = outbox, endpoint
        self._max_packet: int | None = None  # the Maximum Packet Size of the broker's last CONNACK
        self._closes_on: int | None = None  # the smallest packet size the broker closed the connection on
        self._suspect: tuple[Outgoing, int] | None = None  # the message, closes in a row
        self._dropped_mids: list[int] = []  # dropped while paho still holds them: taken out on connect
        self._accepted_at = 0.0
        self._logged = False  # one warning about sizes in all; the rest are counted

    def accepted(self, client: mqtt.Client, properties: Any) -> None:
        """The broker accepted a connection: read its Maximum Packet Size, and make paho forget the
        messages dropped as too large before it sends its unacknowledged ones again (not on
        disconnect: paho may be going through them when the connection ends)."""
        self._accepted_at = time.monotonic()
        while self._dropped_mids:
            forget_unacknowledged(client, self._dropped_mids.pop())
        self._max_packet = getattr(properties, "MaximumPacketSize", None)

    def connect_failed(self) -> None:
        """A connect failed: the broker went away (a restart), so the closes were not on a message."""
        self._suspect = None

    def too_large(self, msg: Outgoing) -> bool:
        """Drop and count a message over the broker's Maximum Packet Size, or as large as one it closed
        the connection on: sent, it would end the connection, and paho would send it again on every
        reconnect."""
        limit, closes_on = self._max_packet, self._closes_on
        if limit is None and closes_on is None:
            return False
        size = publish_packet_size(msg, self._endpoint.protocol)
        announced = limit is not None and size > limit
        if not announced and (closes_on is None or size < closes_on):
            return False
        self._outbox.refuse(msg, "Packet too large")
        self._outbox.take_refusals()  # logged here, with the sizes, rather than as a broker's refusal
        if announced and limit is not None and not self._logged:
            self._logged = True
            log.warning("%s", reasons.too_large(msg.topic, size, limit, self._endpoint))
        return True

    def closed(self, reason: str, from_server: bool) -> bool:
        """After a session the broker ended: drop the message it keeps closing the connection on.

        A message over a size limit the broker did not announce in its CONNACK (announced: too_large)
        ends the connection when it is sent (MQTT 3.1.1: the broker resets it and says nothing;
        mosquitto 2.0's message_size_limit under MQTT 5: a PUBACK reason paho cannot read), and paho
        sends it again first on every reconnect. Taken for one: the largest message outstanding at
        CLOSES_BEFORE_DROP closes in a row, each after the first within SHORT_SESSION_S of the
        reconnect that sent it again. A restarting broker acknowledges what was sent again before it
        next closes, or refuses reconnects meanwhile (connect_failed forgets the suspect). True when
        a message was dropped.
        """
        outstanding = self._outbox.largest_unacked()
        if outstanding is None or (from_server and reason != "Packet too large"):
            self._suspect = None  # nothing stuck, or the broker said why (shutting down, taken over...)
            return False
        mid, msg = outstanding
        lasted = time.monotonic() - self._accepted_at
        closes = 1
        if self._suspect is not None and self._suspect[0] == msg and lasted < SHORT_SESSION_S:
            closes = self._suspect[1] + 1
        # The message may still be in the client's hands at the first close (sent before its id came
        # back); by the next it has its id.
        if closes < CLOSES_BEFORE_DROP or mid is None:
            self._suspect = (msg, closes)
            return False
        self._suspect = None
        self._outbox.give_up(mid)
        self._dropped_mids.append(mid)
        size = publish_packet_size(msg, self._endpoint.protocol)
        # Larger than anything the broker took: its size is the cause, and anything as large would end
        # the same way. (Were it not, it would not tell us anything about sizes.)
        bound = msg.size() > self._outbox.largest_acked
        if bound:
            self._closes_on = min(size, self._closes_on or size)
        detail = f"the broker said {reason}" if from_server else \
            "MQTT 3.1.1 gives no reason" if self._endpoint.protocol == "3.1.1" else reason
        line = reasons.closed_on_message(msg.topic, size, closes, lasted, detail, self._endpoint, bound=bound)
        if self._logged:
            log.debug("%s", line)
        else:
            self._logged = True
            log.warning("%s", line)
        return True


def publish_packet_size(msg: Outgoing, protocol: str) -> int:
    """Bytes of the PUBLISH packet that carries ``msg`` (MQTT 5: with no properties)."""
    remaining = 2 + len(msg.topic.encode()) + (2 if msg.qos else 0) + (1 if protocol == "5" else 0) + \
        len(msg.payload)
    header = 1 + next(n for n in (1, 2, 3, 4) if remaining < 128 ** n)
    return header + remaining
