"""MQTT output: retained availability, expression events and stats over paho-mqtt 2.

The paho adapter (client.py makes and configures the paho client). The outbox (outbox.py)
holds what waits for the broker; ConnectionHealth (health.py) turns paho's connection callbacks
into one clear line per cause and decides what no retry can fix; reasons.py words it. SizeLimits
(sizes.py) drops messages over the broker's size limits.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from ..config import MqttConfig
from ..config.checks import topic_problem
from ..errors import BrokerError
from . import reasons
from .client import OFFLINE, ONLINE, configure, new_client, to_json
from .health import ConnectionHealth, Outcome
from .identity import client_id_for
from .outbox import Delivery, Outbox, Outgoing
from .reasons import Endpoint
from .sizes import SizeLimits

log = logging.getLogger(__name__)

# Messages handed to paho and not yet acknowledged; the rest wait in the outbox, the only
# place the oldest can be dropped: paho's own queue refuses the newest instead.
_MAX_INFLIGHT = 20
_CONTROL_SLOTS = 4  # room in paho's queue for the "online" sent straight from on_connect


class MqttPublisher:
    """Publishes to `<prefix>/<device_id>/{status,emotion,stats}` from one caller thread."""

    def __init__(self, config: MqttConfig, *, device_id: str, password: str | None = None,
                 client_id: str | None = None, announce: bool = True,
                 reconnect_delays: tuple[float, float] = (1.0, 30.0), retry_for: float | None = None,
                 client: mqtt.Client | None = None) -> None:
        """``config`` is a validated [mqtt] table; ``client_id`` overrides ``mqtt.client_id`` and
        the per-board default; ``announce`` False sends no status topic and no last will (one-shot
        tools beside the daemon); ``reconnect_delays`` are the backoff's first and longest wait, in s;
        ``retry_for``: a one-shot tool's timeout, in s, after which it stops the publisher: the
        warnings then say it retries until that timeout, not every 1-30 s."""
        self._config = config
        self.device_id = device_id
        self.client_id: Final = client_id or client_id_for(config.client_id, device_id)
        self._password = password
        self._announce = announce
        self._reconnect_delays = reconnect_delays
        base = f"{config.prefix}/{device_id}"
        # The topic contract other tools rely on; Final keeps them read-only.
        self.status_topic: Final = f"{base}/status"  # retained "online"/"offline"
        self.emotion_topic: Final = f"{base}/emotion"  # JSON expression events
        self.stats_topic: Final = f"{base}/stats"  # JSON stats
        self._checked_topics = {self.status_topic, self.emotion_topic, self.stats_topic}
        self._endpoint = Endpoint(config.host, config.port, self.client_id, config.protocol,
                                  config.username, config.tls, config.cert_file)
        self._health = ConnectionHealth(self._endpoint, reconnect_delays, config.keepalive,
                                        retry_for=retry_for)
        self._outbox = Outbox(config.queue_size, window=max(1, min(_MAX_INFLIGHT, config.queue_size)))
        self._drain_lock = threading.Lock()
        self._drain_wanted = self._connected = False
        self._state = threading.Condition()  # notified when `connected` or `fatal_error` changes
        self._fatal: BrokerError | None = None
        self._direct: dict[int, str] = {}  # message id -> topic of what on_connect sent past the outbox
        self._refused_direct = 0
        self._refusals_logged: set[tuple[str, str]] = set()
        self._events_unsent = 0
        self._sizes = SizeLimits(self._outbox, self._endpoint)
        self._last_error: str | None = None  # paho's last error line ("failed to receive on socket: ...")
        self._started = self._stopped = False
        self._subscriptions: dict[str, int] = {}  # topic filter -> QoS, renewed on every connect
        self._connect_callbacks: list[Callable[[], None]] = []
        self._client = client or new_client(config, self.client_id)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_pre_connect = self._on_pre_connect
        self._client.on_socket_open = self._on_socket_open
        self._client.on_log = self._on_log

    @property
    def connected(self) -> bool:
        """Whether the broker has accepted the current connection."""
        return self._connected

    @property
    def fatal_error(self) -> BrokerError | None:
        """Set when the broker refused us for good; the daemon polls it and exits."""
        return self._fatal

    @property
    def dropped_messages(self) -> int:
        """Messages of every kind lost: the oldest, from a full queue, and QoS 0 ones sent while offline."""
        return self._outbox.dropped + sum(self._outbox.offline_on.values())

    @property
    def queued_messages(self) -> int:
        """Messages waiting for the broker or for room in the in-flight window."""
        return self._outbox.queued

    @property
    def delivery(self) -> Delivery:
        """Events acknowledged, dropped and unsent, messages refused, stats dropped, messages queued."""
        return self._outbox.delivery(self.emotion_topic, self.stats_topic,
                                     refused_elsewhere=self._refused_direct,
                                     events_unsent=self._events_unsent)

    def settled_on(self, topic: str) -> tuple[int, int]:
        """QoS 1 and 2 messages on ``topic`` the broker has acknowledged, and refused (MQTT 5), so far."""
        return self._outbox.settled_on(topic)

    def counters(self) -> dict[str, Any]:
        """The stats fields about the connection and delivery (the loop's EventSink asks for them)."""
        return {"mqtt_connected": self.connected, **self.delivery.stats_fields()}

    def start(self) -> None:
        """Configure the client and connect in the background; a down broker is not an error."""
        if self._started:
            return
        s = self._config
        session = configure(self._client, s, password=self._password,
                            status_topic=self.status_topic if self._announce else None,
                            reconnect_delays=self._reconnect_delays,
                            window=self._outbox.window + _CONTROL_SLOTS)
        self._client.connect_async(s.host, s.port, keepalive=s.keepalive, properties=session)
        log.info("publishing to MQTT broker %s:%d as %s (MQTT %s)", s.host, s.port, self.client_id,
                 s.protocol)
        self._client.loop_start()
        self._started = True

    def wait_connected(self, timeout: float) -> bool:
        """Block until the broker accepts us, refuses us for good or ``timeout`` s pass; True if connected."""
        with self._state:
            self._state.wait_for(lambda: self._connected or self._fatal is not None, timeout)
            return self._connected

    def publish_event(self, event: dict[str, Any]) -> None:
        """Publish one expression event as compact JSON with the configured QoS."""
        self.publish(self.emotion_topic, to_json(event), qos=self._config.qos)

    def publish_stats(self, stats: dict[str, Any]) -> None:
        """Publish stats as compact JSON at QoS 0: a stale snapshot is not worth queueing."""
        self.publish(self.stats_topic, to_json(stats), qos=0)

    def publish(self, topic: str, payload: str | bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Queue a message for a full topic; QoS 0 goes out only while connected, else is dropped."""
        if not topic or "+" in topic or "#" in topic:
            raise ValueError(f"cannot publish to MQTT topic {topic!r}: it is empty or has a wildcard")
        if topic not in self._checked_topics:
            # Here, on the caller's thread: an invalid topic raising inside paho's thread would end it.
            if problem := topic_problem(topic):
                raise ValueError(f"cannot publish to MQTT topic {topic[:80]!r}: it {problem}")
            self._checked_topics.add(topic)
        if qos not in (0, 1, 2):
            raise ValueError(f"MQTT QoS must be 0, 1 or 2, not {qos!r}")
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        if qos == 0:
            if self._sizes.too_large(Outgoing(topic, data, 0, retain)):
                return
            if not self._connected or self._client.publish(topic, data, 0, retain).rc:  # rc 0: sent
                self._outbox.count_offline(topic)
            return
        full = self._outbox.put(Outgoing(topic, data, qos, retain))
        dropped = self._outbox.dropped
        # Logged at the 1st, 2nd, 4th, 8th... drop: seen in a long outage, without a flood.
        if full and dropped & (dropped - 1) == 0:
            log.warning("MQTT queue full: dropped the oldest message (%d so far)", dropped)
        self._drain()

    def subscribe(self, topic: str, callback: Callable[[bytes], None], *, qos: int = 1) -> None:
        """Call ``callback(payload)`` on paho's thread for each message on ``topic``, across reconnects."""
        self._client.message_callback_add(topic, lambda _c, _u, msg: _call_safely(callback, msg.payload))
        self._subscriptions[topic] = qos
        if self._connected:
            self._client.subscribe(topic, qos)

    def add_connect_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` on paho's thread after every accepted connection, once "online" is out."""
        self._connect_callbacks.append(callback)

    def stop(self, timeout: float = 2.0) -> None:
        """Publish retained "offline", wait up to `timeout` for acknowledgements, disconnect."""
        if not self._started or self._stopped:
            return
        self._stopped = True
        if self._announce:
            # Queued behind the pending events, so no event follows the "offline".
            self.publish(self.status_topic, OFFLINE, qos=1, retain=True)
        # Without a connection nothing can be acknowledged: no point waiting.
        if not self._outbox.wait_until_empty(timeout, give_up=lambda: not self._connected):
            log.warning("MQTT messages still unacknowledged after %.1f s; disconnecting", timeout)
        was_connected = self._connected  # before paho's thread hears of the disconnect
        self._client.disconnect()
        self._client.loop_stop()  # paho's thread sees the disconnect within its 1 s poll
        self._health.stop()
        self._events_unsent = sum(m.topic == self.emotion_topic for m in self._outbox.unsettled())
        # Not "disconnected" from a broker it never reached, or had lost: the warnings said so.
        done = "disconnected from" if was_connected else "stopped trying to reach"
        log.info("%s MQTT broker %s:%d", done, self._config.host, self._config.port)

    def _drain(self) -> None:
        # Runs on either thread. A busy drain is asked to go round again rather than
        # waited for: waiting here while paho holds its lock could deadlock.
        self._drain_wanted = True
        while self._drain_wanted and self._drain_lock.acquire(blocking=False):
            try:
                self._drain_wanted = False
                while (msg := self._outbox.take(self._connected and not self._fatal)) is not None:
                    if self._sizes.too_large(msg):
                        continue
                    info = self._client.publish(*msg)
                    if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                        self._outbox.put_back(msg)
                        break
                    # Even on MQTT_ERR_NO_CONN paho keeps a QoS>0 message to re-send.
                    self._outbox.handed(info.mid, msg)
                for refused, reason in self._outbox.take_refusals():
                    self._report_refusal(refused.topic, reason)
            finally:
                self._drain_lock.release()

    def _report_refusal(self, topic: str, reason: str) -> None:
        if (topic, reason) not in self._refusals_logged:  # once per topic and reason; the rest are counted
            self._refusals_logged.add((topic, reason))
            log.warning("%s", reasons.refused_publish(topic, reason, self._endpoint))

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        self._last_error = None
        self._health.connecting()

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._health.opened()

    def _on_log(self, client: mqtt.Client, userdata: Any, level: int, buf: str) -> None:
        if level == mqtt.MQTT_LOG_ERR:
            self._last_error = buf  # why a socket read failed: paho passes it nowhere else

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason_code: ReasonCode, properties: Any) -> None:
        s = self._config
        if reason_code.is_failure:
            self._apply(self._health.refused(reason_code.getName()))
            return
        log.info("connected to MQTT broker %s:%d", s.host, s.port)
        self._sizes.accepted(client, properties)  # before paho sends its unacknowledged messages again
        self._apply(self._health.accepted(flags.session_present))
        # On every connect (a broker restarted without persistence has forgotten it),
        # and before `connected` lets anything else out.
        if self._announce:
            online = client.publish(self.status_topic, ONLINE, qos=1, retain=True)
            self._direct[online.mid] = self.status_topic
        self._outbox.reconnected()
        self._set_connected(True)
        self._drain()
        # A clean session forgets subscriptions, and a broker restart forgets retained messages.
        for topic, qos in self._subscriptions.items():
            client.subscribe(topic, qos)
        for callback in self._connect_callbacks:
            _call_safely(callback)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._sizes.connect_failed()
        # paho calls us from inside its `except OSError:` but does not pass the error.
        self._apply(self._health.connect_failed(sys.exc_info()[1]))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                       reason_code: ReasonCode, properties: Any) -> None:
        accepted = self._connected
        self._set_connected(False)
        self._outbox.wake()
        if self._stopped or self._fatal is not None:
            return  # we hung up
        reason, from_server = reason_code.getName(), flags.is_disconnect_packet_from_server
        dropped = accepted and self._sizes.closed(reason, from_server)
        self._apply(self._health.closed(reason, from_server, self._last_error, explained=dropped))

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        refusal = reason.getName() if isinstance(reason, ReasonCode) and reason.is_failure else None
        if mid in self._direct:
            topic = self._direct.pop(mid)
            if refusal:
                self._refused_direct += 1
                self._report_refusal(topic, refusal)
            return
        self._outbox.acknowledged(mid, refusal)
        self._drain()

    def _apply(self, outcome: Outcome) -> None:
        if outcome.delays is not None:
            first, longest = outcome.delays
            self._client.reconnect_delay_set(first, longest)  # type: ignore[arg-type]
        if outcome.fatal is not None:
            self._fail(outcome.fatal)

    def _set_connected(self, connected: bool) -> None:
        with self._state:
            self._connected = connected
            self._state.notify_all()

    def _fail(self, message: str) -> None:
        log.debug("fatal: %s", message)  # the daemon reports it, from fatal_error
        self._fatal = BrokerError(message)
        self._set_connected(False)
        self._outbox.wake()
        self._health.stop()
        # Ends paho's reconnect loop: retrying cannot fix credentials or certificates.
        self._client.disconnect()


def _call_safely(callback: Callable[..., None], *args: Any) -> None:
    # An exception escaping a paho callback would end paho's network thread.
    try:
        callback(*args)
    except Exception:
        log.exception("MQTT callback %r failed", callback)

