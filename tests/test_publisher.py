"""MqttPublisher: unit tests with a fake paho client, integration tests against a real mosquitto."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from devkit.broker import MosquittoBroker
from fer_edge.config import MqttConfig
from fer_edge.errors import BrokerError
from fer_edge.mqtt.client import forget_unacknowledged
from fer_edge.mqtt.publisher import MqttPublisher
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from support.mqtt import MqttCollector, topic_is, wait_until

REPO = Path(__file__).resolve().parents[1]
_device_ids = itertools.count()


@dataclass(frozen=True)
class Settings:
    """What a publisher is made from: the [mqtt] table, the device id and the password."""

    config: MqttConfig
    device_id: str
    password: str | None = None


def settings_for(broker: MosquittoBroker | None = None, password: str | None = None,
                 **overrides: Any) -> Settings:
    """Settings with a unique device id, aimed at `broker`."""
    values: dict[str, Any] = {} if broker is None else {"host": broker.host, "port": broker.port}
    return Settings(MqttConfig(**(values | overrides)), f"test{next(_device_ids)}", password)


def new_publisher(settings: Settings, **options: Any) -> MqttPublisher:
    """A publisher with fast reconnects (0.05 to 0.25 s)."""
    return MqttPublisher(settings.config, device_id=settings.device_id, password=settings.password,
                         reconnect_delays=(0.05, 0.25), **options)


@pytest.fixture
def publisher() -> Iterator[Callable[[Settings], MqttPublisher]]:
    """Make started publishers; each is stopped at teardown."""
    made: list[MqttPublisher] = []

    def make(settings: Settings) -> MqttPublisher:
        made.append(new_publisher(settings))
        made[-1].start()
        return made[-1]

    yield make
    for pub in made:
        pub.stop(timeout=0.5)


# --- unit tests: a fake client stands in for paho and the test plays its network thread ---

class FakeClient:
    """Records publishes; `connect()` and `ack()` call the callbacks paho's thread would."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, int, bool]] = []
        self.mids: list[int] = []
        self.disconnected = False
        self._mid = itertools.count(1)

    def publish(self, topic: str, payload: Any, qos: int = 0, retain: bool = False) -> mqtt.MQTTMessageInfo:
        info = mqtt.MQTTMessageInfo(next(self._mid))
        info.rc = mqtt.MQTT_ERR_SUCCESS
        self.published.append((topic, payload.encode() if isinstance(payload, str) else payload, qos, retain))
        self.mids.append(info.mid)
        return info

    def disconnect(self) -> None:
        self.disconnected = True

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None  # will_set, tls_set, loop_start, ...

    def connect(self, reason: str = "Success") -> None:
        flags = mqtt.ConnectFlags(session_present=False)
        self.on_connect(self, None, flags, ReasonCode(PacketTypes.CONNACK, reason), None)

    def ack(self, mid: int, reason: str = "Success") -> None:
        self.on_publish(self, None, mid, ReasonCode(PacketTypes.PUBACK, reason), None)


def fake_publisher(**overrides: Any) -> tuple[MqttPublisher, FakeClient]:
    client = FakeClient()
    pub = new_publisher(settings_for(**overrides), client=client)  # type: ignore[arg-type]
    pub.start()
    return pub, client


def test_full_queue_drops_the_oldest_and_counts():
    pub, client = fake_publisher(queue_size=3)
    for i in range(5):
        pub.publish_event({"n": i})
    assert (pub.dropped_messages, pub.queued_messages) == (2, 3)
    client.connect()
    assert [p[1] for p in client.published] == [b"online", b'{"n":2}', b'{"n":3}', b'{"n":4}']


def test_inflight_window_is_bounded_and_order_kept():
    pub, client = fake_publisher(queue_size=100)
    client.connect()
    for i in range(25):
        pub.publish_event({"n": i})
    assert len(client.published) == 1 + 20  # "online" plus the in-flight window
    for mid in client.mids[1:]:
        client.ack(mid)
    assert [p[1] for p in client.published[1:]] == [b'{"n":%d}' % i for i in range(25)]
    assert pub.queued_messages == 0


def test_after_a_reconnect_new_events_wait_for_the_resent_ones():
    pub, client = fake_publisher()
    client.connect()
    pub.publish_event({"n": 0})
    client.on_disconnect(client, None, mqtt.DisconnectFlags(False), ReasonCode(PacketTypes.DISCONNECT), None)
    pub.publish_event({"n": 1})
    client.connect()  # paho now re-sends event 0 itself; event 1 must not overtake it
    assert [p[1] for p in client.published] == [b"online", b'{"n":0}', b"online"]
    client.ack(client.mids[1])
    assert client.published[-1][1] == b'{"n":1}'


def test_qos0_stats_are_dropped_while_disconnected():
    pub, client = fake_publisher()
    pub.publish_stats({"fps": 1.0})
    assert (pub.dropped_messages, pub.queued_messages, client.published) == (1, 0, [])


def test_events_lost_are_counted_apart_from_stats_lost():
    pub, client = fake_publisher(queue_size=2)
    pub.publish_stats({"fps": 1.0})
    for i in range(5):
        pub.publish_event({"n": i})
    pub.publish("fer-edge/other", "x", qos=1)  # drops one more event: the oldest in the queue
    delivery = pub.delivery
    assert (delivery.events_dropped, delivery.stats_dropped, delivery.queued) == (4, 1, 2)
    assert pub.dropped_messages == 5  # every kind together, as before


def test_acknowledged_and_refused_events_are_counted_and_a_refusal_logged_once(caplog):
    caplog.set_level("WARNING")
    pub, client = fake_publisher()
    client.connect()
    client.ack(client.mids[0], "Not authorized")  # the "online"
    for i in range(4):
        pub.publish_event({"n": i})
    for mid, reason in zip(client.mids[1:], ["Success", "Not authorized", "Not authorized", "Success"],
                           strict=True):
        client.ack(mid, reason)
    delivery = pub.delivery
    assert (delivery.events_acked, delivery.refused) == (2, 3)
    lines = [m for m in caplog.messages if "refused a message" in m]
    assert len(lines) == 2  # once for the status topic, once for the events
    assert f"refused a message on {pub.emotion_topic} (Not authorized); its access list (ACL)" in lines[1]


def test_stop_says_disconnected_only_when_it_was_connected(caplog):
    caplog.set_level("INFO", logger="fer_edge.mqtt.publisher")
    never, _ = fake_publisher()
    never.stop(timeout=0.1)
    assert "disconnected" not in caplog.text
    assert caplog.messages[-1] == "stopped trying to reach MQTT broker localhost:1883"
    caplog.clear()
    pub, client = fake_publisher()
    client.connect()
    pub.stop(timeout=0.1)
    assert caplog.messages[-1] == "disconnected from MQTT broker localhost:1883"


def test_events_still_waiting_at_stop_are_counted():
    pub, client = fake_publisher()
    for i in range(3):
        pub.publish_event({"n": i})
    pub.stop(timeout=0.1)
    assert (pub.delivery.events_unsent, pub.delivery.events_acked) == (3, 0)


@pytest.mark.parametrize("topic", ["fer-edge/a\x07b/x", "$SYS/fer-edge", "t/" + "x" * 70_000])
def test_publish_refuses_topics_a_broker_would_refuse(topic):
    pub, _ = fake_publisher()
    with pytest.raises(ValueError, match="cannot publish to MQTT topic"):
        pub.publish(topic, "x")


def test_payload_is_compact_json_and_numpy_values_serialise():
    pub, client = fake_publisher()
    client.connect()
    pub.publish_event({"score": np.float32(0.5), "box": np.array([1, 2, 3, 4]), "label": "happy"})
    expected = b'{"score":0.5,"box":[1,2,3,4],"label":"happy"}'
    assert client.published[-1] == (pub.emotion_topic, expected, 1, False)


@pytest.mark.parametrize("topic", ["", "fer-edge/+/emotion", "fer-edge/#"])
def test_publish_rejects_empty_and_wildcard_topics(topic):
    pub, _ = fake_publisher()
    with pytest.raises(ValueError, match="empty or has a wildcard"):
        pub.publish(topic, "x")


@pytest.mark.parametrize(("username", "reason", "expected"), [
    ("alice", "Not authorized", "the credentials for user 'alice' (Not authorized); check mqtt.username"),
    ("alice", "Bad user name or password", "for user 'alice' (Bad user name or password)"),
    (None, "Not authorized", "refused an anonymous connection (Not authorized); set mqtt.username"),
])
def test_refused_credentials_are_fatal_and_never_connected(username, reason, expected):
    pub, client = fake_publisher(username=username, password="x")
    client.connect(reason)
    assert isinstance(pub.fatal_error, BrokerError)
    assert expected in str(pub.fatal_error)
    assert not pub.connected and client.disconnected


def test_other_refusals_are_retried():
    pub, client = fake_publisher()
    client.connect("Server unavailable")
    assert pub.fatal_error is None and not pub.connected and not client.disconnected


@pytest.mark.parametrize("reason", ["Success", "Not authorized"])
def test_wait_connected_wakes_on_the_brokers_answer(reason):
    """It returns as soon as paho's thread reports the CONNACK: True if accepted, False if refused."""
    pub, client = fake_publisher()
    answer = threading.Timer(0.05, client.connect, (reason,))
    answer.start()
    started = time.monotonic()
    assert pub.wait_connected(timeout=30) is (reason == "Success")
    assert time.monotonic() - started < 10  # woken, not timed out
    assert (pub.fatal_error is None) is (reason == "Success")
    answer.join()


def test_wait_connected_gives_up_after_the_timeout():
    pub, _ = fake_publisher()
    started = time.monotonic()
    assert pub.wait_connected(timeout=0.2) is False
    assert time.monotonic() - started >= 0.2


def test_topics_follow_the_contract():
    pub = MqttPublisher(MqttConfig(prefix="home"), device_id="pi4")
    assert (pub.status_topic, pub.emotion_topic, pub.stats_topic) == (
        "home/pi4/status", "home/pi4/emotion", "home/pi4/stats")
    # Issue #15 changed the default client id from "fer-edge-pi4", which every board named pi4
    # shared, to one with 8 hex digits of this board's machine id.
    assert re.fullmatch(r"fer-edge-pi4-[0-9a-f]{8}", MqttPublisher(MqttConfig(), device_id="pi4").client_id)
    assert MqttPublisher(MqttConfig(client_id="cam-7"), device_id="pi4").client_id == "cam-7"


# --- integration tests against a real mosquitto ---

def received_events(collector: MqttCollector, topic: str, count: int) -> list[int]:
    """Event numbers in order of first arrival, once `count` distinct ones came (QoS 1 may repeat one)."""
    def numbers() -> list[int]:
        return list(dict.fromkeys(m.json()["n"] for m in collector.matching(topic_is(topic))))
    wait_until(lambda: len(numbers()) >= count, what=f"{count} distinct events on {topic}")
    return numbers()


def test_online_is_retained_after_connect(mosquitto, mqtt_collector, publisher):
    pub = publisher(settings_for(mosquitto))
    wait_until(lambda: pub.connected, what="the publisher to connect")
    late = mqtt_collector(mosquitto, pub.status_topic)
    message = late.wait_for(topic_is(pub.status_topic))
    assert (message.text, message.retain, message.qos) == ("online", True, 1)


def test_stop_delivers_pending_events_then_leaves_offline_retained(mosquitto, mqtt_collector):
    pub = new_publisher(settings_for(mosquitto))
    pub.start()
    wait_until(lambda: pub.connected, what="the publisher to connect")
    live = mqtt_collector(mosquitto, "fer-edge/#")
    for i in range(30):
        pub.publish_event({"n": i})
    started = time.monotonic()
    pub.stop(timeout=2.0)
    assert time.monotonic() - started < 2.0
    status = live.wait_for(topic_is(pub.status_topic, "offline"))
    events = live.matching(topic_is(pub.emotion_topic))
    assert [m.json()["n"] for m in events] == list(range(30))
    assert live.messages.index(status) > live.messages.index(events[-1])  # no event after "offline"
    late = mqtt_collector(mosquitto, pub.status_topic).wait_for(topic_is(pub.status_topic))
    assert (late.text, late.retain) == ("offline", True)


@pytest.mark.slow
def test_last_will_marks_a_killed_daemon_offline(mosquitto, mqtt_collector):
    settings = settings_for(mosquitto)
    status = f"{settings.config.prefix}/{settings.device_id}/status"
    live = mqtt_collector(mosquitto, status)
    code = ("import threading\nfrom fer_edge.config import MqttConfig\n"
            "from fer_edge.mqtt.publisher import MqttPublisher\n"
            f"MqttPublisher(MqttConfig(host={mosquitto.host!r}, port={mosquitto.port}), "
            f"device_id={settings.device_id!r}).start()\nthreading.Event().wait()\n")
    daemon = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    try:
        live.wait_for(topic_is(status, "online"), timeout=10)
    finally:
        daemon.kill()  # SIGKILL: no chance to say goodbye, so the broker sends the will
        daemon.wait()
    live.wait_for(topic_is(status, "offline"))
    late = mqtt_collector(mosquitto, status).wait_for(topic_is(status))
    assert (late.text, late.retain) == ("offline", True)


def test_events_arrive_as_json_on_the_exact_topics(mosquitto, mqtt_collector, publisher):
    settings = settings_for(mosquitto, prefix="fer-test")
    pub = publisher(settings)
    live = mqtt_collector(mosquitto, "fer-test/#")
    wait_until(lambda: pub.connected, what="the publisher to connect")
    event = {"ts": 1.5, "face": 3, "emotion": "happy", "scores": {"happy": 0.9, "sad": 0.1}}
    pub.publish_event(event)
    pub.publish_stats({"fps": 12.5})
    got = live.wait_for(topic_is(f"fer-test/{settings.device_id}/emotion"))
    assert got.json() == event and got.qos == 1 and b" " not in got.payload
    stats = live.wait_for(topic_is(pub.stats_topic))
    assert stats.json() == {"fps": 12.5}


def test_broker_down_at_start_then_up_delivers_queued_events(mosquitto_factory, mqtt_collector, publisher):
    broker = mosquitto_factory(persistence=True)
    # A persistent session makes the broker queue for the collector from its first second back up.
    collector = mqtt_collector(broker, "fer-edge/#", persistent=True)
    collector.close()
    broker.stop()
    pub = publisher(settings_for(broker))  # must not raise
    for i in range(5):
        pub.publish_event({"n": i})
    assert not pub.connected and pub.queued_messages == 5
    broker.start()
    collector.start()  # same client id: the session the broker kept
    assert received_events(collector, pub.emotion_topic, 5) == list(range(5))
    assert pub.dropped_messages == 0


def test_broker_restart_loses_no_event_and_republishes_online(mosquitto_factory, mqtt_collector, publisher):
    broker = mosquitto_factory(persistence=True)
    pub = publisher(settings_for(broker))
    wait_until(lambda: pub.connected, what="the publisher to connect")
    live = mqtt_collector(broker, "fer-edge/#", persistent=True)
    pub.publish_event({"n": 0})
    live.wait_for(topic_is(pub.emotion_topic))
    broker.stop()
    wait_until(lambda: not pub.connected, what="the publisher to notice the broker is gone")
    for i in range(1, 5):
        pub.publish_event({"n": i})
    broker.start()
    assert received_events(live, pub.emotion_topic, 5) == list(range(5))
    # The collector subscribed after the first connect, so it got that "online" as a
    # retained copy; a live one (retain flag clear) can only come from the reconnect.
    live.wait_for(lambda m: topic_is(pub.status_topic, "online")(m) and not m.retain)
    assert pub.connected


@pytest.mark.parametrize(("username", "password", "expected"), [
    ("alice", "wrong", "refused the credentials for user 'alice'"),
    ("mallory", "s3cret", "refused the credentials for user 'mallory'"),
    (None, None, "refused an anonymous connection"),
])
def test_refused_credentials_are_fatal(mosquitto_factory, publisher, username, password, expected):
    broker = mosquitto_factory(users={"alice": "s3cret"})
    pub = publisher(settings_for(broker, username=username, password=password))
    wait_until(lambda: pub.fatal_error is not None, what="the refusal")
    assert isinstance(pub.fatal_error, BrokerError)
    message = str(pub.fatal_error)
    assert expected in message and f"{broker.host}:{broker.port}" in message
    assert "Not authorized" in message or "Bad user name or password" in message
    assert not pub.connected


def test_right_credentials_connect(mosquitto_factory, mqtt_collector, publisher):
    broker = mosquitto_factory(users={"alice": "s3cret"})
    pub = publisher(settings_for(broker, username="alice", password="s3cret"))
    late = mqtt_collector(broker, "fer-edge/#", username="alice", password="s3cret")
    assert late.wait_for(topic_is(pub.status_topic)).text == "online"
    assert pub.fatal_error is None


def test_stop_returns_promptly_when_the_broker_is_gone(mosquitto_factory):
    broker = mosquitto_factory(start=False)
    pub = new_publisher(settings_for(broker))
    pub.start()
    pub.publish_event({"n": 0})
    started = time.monotonic()
    pub.stop(timeout=0.5)
    assert time.monotonic() - started < 1.6  # timeout plus paho's one-second poll at most


def test_stop_is_bounded_when_the_broker_stops_answering(mosquitto, publisher):
    pub = publisher(settings_for(mosquitto))
    wait_until(lambda: pub.connected, what="the publisher to connect")
    mosquitto.pause()
    try:
        for i in range(5):
            pub.publish_event({"n": i})
        started = time.monotonic()
        pub.stop(timeout=0.5)
        assert time.monotonic() - started < 1.6
    finally:
        mosquitto.resume()


# --- TLS ---

@pytest.fixture
def tls_broker(mosquitto_factory, tls_files) -> MosquittoBroker:
    return mosquitto_factory(f"certfile {tls_files['cert']}", f"keyfile {tls_files['key']}")


def test_tls_with_the_right_ca_connects(tls_broker, tls_files, publisher):
    pub = publisher(settings_for(tls_broker, tls=True, ca_file=str(tls_files["ca"])))
    wait_until(lambda: pub.connected or pub.fatal_error is not None, what="the TLS connection")
    assert pub.fatal_error is None and pub.connected


def test_tls_with_an_untrusted_certificate_is_fatal(tls_broker, publisher):
    pub = publisher(settings_for(tls_broker, tls=True))  # system CAs do not know our test CA
    wait_until(lambda: pub.fatal_error is not None, what="the TLS failure")
    assert "TLS handshake with broker" in str(pub.fatal_error)
    assert "certificate" in str(pub.fatal_error) and not pub.connected


def test_tls_to_a_plain_port_is_fatal(mosquitto, publisher):
    pub = publisher(settings_for(mosquitto, tls=True))
    wait_until(lambda: pub.fatal_error is not None, what="the TLS failure")
    assert "check that the port speaks TLS" in str(pub.fatal_error)


def test_forget_unacknowledged_takes_one_message_out_of_paho_resend_queue() -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    for mid in (7, 8):
        client.publish(f"t/{mid}", b"x", qos=1)  # not connected: held for sending on connect
    held = list(client._out_messages)
    assert len(held) == 2
    assert forget_unacknowledged(client, held[0])
    assert list(client._out_messages) == held[1:]
    assert not forget_unacknowledged(client, held[0])  # already gone


def test_forget_unacknowledged_is_a_no_op_on_a_paho_without_that_queue() -> None:
    class LaterPaho:  # a client whose internals changed
        pass

    assert not forget_unacknowledged(LaterPaho(), 1)  # type: ignore[arg-type]
