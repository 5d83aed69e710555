"""The broker side of untrusted input: a huge retained message on a topic the daemon watches, and a
flood of Home Assistant birth messages, against a real mosquitto on loopback."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading

import paho.mqtt.client as mqtt
import pytest
from fer_edge.classifier import DEFAULT_LABELS
from fer_edge.config import MqttConfig, load_config
from fer_edge.mqtt.homeassistant import HomeAssistantDiscovery
from fer_edge.mqtt.publisher import MqttPublisher
from paho.mqtt.enums import CallbackAPIVersion
from support.mqtt import topic_is, wait_until
from test_homeassistant import N_ENTITIES, is_config

BIRTH = "homeassistant/status"

# A daemon's MQTT side alone in a process of its own, so that its peak RSS is its own: the
# publisher, the discovery watching the birth topic, then a retained probe subscribed after it,
# which the broker sends after the birth topic's retained message (or after dropping it).
PROBE = textwrap.dedent("""
    import sys, threading
    from fer_edge.classifier import DEFAULT_LABELS
    from fer_edge.config import load_config
    from fer_edge.mqtt.homeassistant import HomeAssistantDiscovery
    from fer_edge.mqtt.publisher import MqttPublisher

    def kb(field):
        return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field + ":"))

    host, port, protocol = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    config = load_config(None, {"mqtt.host": host, "mqtt.port": port, "mqtt.protocol": protocol,
                                "mqtt.device_id": "probe", "homeassistant.enabled": True}, environ={})
    publisher = MqttPublisher(config.mqtt, device_id="probe", reconnect_delays=(0.1, 0.5))
    HomeAssistantDiscovery.from_config(config, publisher, DEFAULT_LABELS).attach()
    done = threading.Event()
    publisher.subscribe("probe/done", lambda payload: done.set())
    idle = kb("VmRSS")
    publisher.start()
    done.wait(60)
    print(done.is_set(), (kb("VmHWM") - idle) // 1024, flush=True)
    publisher.stop(timeout=1)
""")


def client(broker) -> mqtt.Client:
    paho = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    paho.connect(broker.host, broker.port)
    paho.loop_start()
    return paho


@pytest.mark.slow
@pytest.mark.parametrize("protocol, bounded", [("5", True), ("3.1.1", False)])
def test_a_150_mb_retained_message_on_the_birth_topic_costs_under_20_mb(mosquitto, protocol: str,
                                                                        bounded: bool) -> None:
    """MQTT 5: Maximum Packet Size on CONNECT, so the broker never sends it. 3.1.1 has no such
    bound: there the same message is read whole (the contrast shows the test measures it)."""
    sender = client(mosquitto)
    try:
        sender.publish(BIRTH, b"o" * 150_000_000, qos=1, retain=True).wait_for_publish(60)
        sender.publish("probe/done", b"1", qos=1, retain=True).wait_for_publish(10)
        probe = subprocess.run([sys.executable, "-c", PROBE, mosquitto.host, str(mosquitto.port), protocol],
                               capture_output=True, text=True, timeout=90)
        done, growth = probe.stdout.split()
    finally:
        sender.publish(BIRTH, b"", qos=1, retain=True).wait_for_publish(60)
        sender.loop_stop()
        sender.disconnect()
    assert done == "True"
    if bounded:
        assert int(growth) < 20, f"peak RSS grew {growth} MB"
    else:
        assert int(growth) > 100, f"peak RSS grew only {growth} MB: the measurement missed the message"


def test_3000_births_in_a_second_make_one_resend_and_lose_no_event(mosquitto, mqtt_collector, caplog) -> None:
    caplog.set_level(logging.INFO, "fer_edge.mqtt.homeassistant")
    configs = mqtt_collector(mosquitto, "homeassistant/+/+/+/config")
    events = mqtt_collector(mosquitto, "fer-edge/test/emotion")
    publisher = MqttPublisher(MqttConfig(host=mosquitto.host, port=mosquitto.port), device_id="test",
                              reconnect_delays=(0.1, 0.5))
    config = load_config(None, {"mqtt.device_id": "test", "homeassistant.enabled": True}, environ={})
    discovery = HomeAssistantDiscovery.from_config(config, publisher, DEFAULT_LABELS)
    discovery.attach()
    publisher.start()
    flood = client(mosquitto)
    try:
        configs.wait_for_count(is_config, N_ENTITIES)  # the configs sent on connecting

        def births() -> None:
            for _ in range(2999):
                flood.publish(BIRTH, b"online", qos=0)
            flood.publish(BIRTH, b"online", qos=1).wait_for_publish(10)

        flooding = threading.Thread(target=births)
        flooding.start()
        for frame in range(500):
            publisher.publish_event({"frame": frame, "emotion": "happy"})
        flooding.join(30)
        events.wait_for_count(topic_is("fer-edge/test/emotion"), 500, timeout=20)
        configs.wait_for_count(is_config, 2 * N_ENTITIES, timeout=15)
        wait_until(lambda: discovery.resends >= 1, what="the debounced re-send")
    finally:
        discovery.close()
        publisher.stop(timeout=1)
        flood.loop_stop()
        flood.disconnect()
    assert publisher.delivery.events_dropped == 0
    # one re-send for the flood; a second only if births were still arriving after it
    assert discovery.resends <= 2 and len(configs.matching(is_config)) <= 3 * N_ENTITIES
    assert sum("re-sending discovery" in r.message for r in caplog.records) <= 2
    assert len(caplog.records) < 20
