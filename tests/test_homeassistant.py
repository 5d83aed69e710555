"""Home Assistant MQTT discovery against a real broker, checked against Home Assistant's own rules.

The rules below are those of Home Assistant's MQTT sensor discovery schema (2026): topic
``<prefix>/sensor/[<node_id>/]<object_id>/config`` with ids of [a-zA-Z0-9_-]; ``state_topic``
required; a ``device`` needs ``identifiers`` or ``connections`` and its entities a ``unique_id``;
``default_entity_id`` replaced ``object_id`` (removed in 2026.4); unknown keys are silently
dropped (so a typo would go unnoticed: we check against the known keys).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from devkit.media import make_face_video
from fer_edge.config import MqttConfig, load_config
from fer_edge.daemon import build_pipeline
from fer_edge.errors import ConfigError
from fer_edge.mqtt.homeassistant import (
    SENSORS,
    HomeAssistantDiscovery,
    discovery_configs,
    discovery_node_id,
)
from fer_edge.mqtt.publisher import MqttPublisher
from paho.mqtt.enums import CallbackAPIVersion
from support.mqtt import Received, topic_is, wait_until

try:
    import jinja2  # the template engine Home Assistant renders value_template with
except ImportError:
    pytest.fail("the Home Assistant tests render value templates with Jinja2: pip install jinja2",
                pytrace=False)

ROOT = Path(__file__).resolve().parents[1]
STATUS, STATS = "fer-edge/test/status", "fer-edge/test/stats"
CONFIG_TOPIC = re.compile(r"homeassistant/sensor/[A-Za-z0-9_-]+/[A-Za-z0-9_-]+/config")
SENSOR_KEYS = {
    "name", "unique_id", "default_entity_id", "state_topic", "value_template", "availability_topic",
    "payload_available", "payload_not_available", "device", "origin", "unit_of_measurement", "state_class",
    "device_class", "icon", "entity_category", "expire_after", "force_update", "suggested_display_precision",
    "qos", "enabled_by_default", "json_attributes_topic", "json_attributes_template", "encoding",
    "availability_mode", "availability_template"}
DEVICE_KEYS = {"identifiers", "connections", "manufacturer", "model", "model_id", "name", "hw_version",
               "serial_number", "sw_version", "via_device", "suggested_area", "configuration_url"}
LABELS = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}


def is_config(message: Received) -> bool:
    return CONFIG_TOPIC.fullmatch(message.topic) is not None


def schema_problems(topic: str, config: dict[str, Any]) -> list[str]:
    """Where one sensor config breaks Home Assistant's discovery rules (or the daemon's topics)."""
    device = config.get("device", {})
    checks = [
        (CONFIG_TOPIC.fullmatch(topic) is not None, f"bad discovery topic {topic}"),
        (not set(config) - SENSOR_KEYS, f"unknown keys {set(config) - SENSOR_KEYS}"),
        ({"name", "unique_id", "state_topic", "device"} <= set(config), "a required key is missing"),
        (re.fullmatch(r"sensor\.[a-z0-9_]+", config.get("default_entity_id", "")) is not None,
         "default_entity_id is not sensor.<slug>"),
        (config.get("state_topic") == STATS, "state_topic is not the daemon's stats topic"),
        (config.get("availability_topic") == STATUS, "availability_topic is not the daemon's status topic"),
        ((config.get("payload_available"), config.get("payload_not_available")) == ("online", "offline"),
         "availability payloads differ from the status topic's"),
        (bool(device.get("identifiers")) and all(isinstance(i, str) for i in device["identifiers"]),
         "device has no identifiers"),
        (not set(device) - DEVICE_KEYS, f"unknown device keys {set(device) - DEVICE_KEYS}"),
        (bool(config.get("origin", {}).get("name")), "origin has no name"),
        (config.get("state_class") in (None, "measurement", "total", "total_increasing"), "bad state_class"),
        (config.get("entity_category") in (None, "config", "diagnostic"), "bad entity_category"),
        (not config.get("name", "").lower().startswith(device.get("name", "\0").lower()),
         "entity name starts with the device name"),
        (config.get("icon", "mdi:").startswith("mdi:"), "icon is not an mdi: icon"),
    ]
    return [message for ok, message in checks if not ok]


def render(template: str, payload: dict[str, Any]) -> str:
    """A value_template rendered as Home Assistant does it for a JSON payload."""
    return jinja2.Environment().from_string(template).render(value_json=payload)


@pytest.fixture
def publisher(mosquitto) -> Iterator[MqttPublisher]:
    publisher = MqttPublisher(MqttConfig(host=mosquitto.host, port=mosquitto.port), device_id="test",
                              reconnect_delays=(0.1, 0.5))
    yield publisher
    publisher.stop(timeout=1)


@pytest.fixture
def discovery(publisher: MqttPublisher) -> HomeAssistantDiscovery:
    config = load_config(None, {"mqtt.device_id": "test", "homeassistant.enabled": True}, environ={})
    discovery = HomeAssistantDiscovery.from_config(config, publisher)
    discovery.attach()
    publisher.start()
    return discovery


def test_configs_follow_home_assistants_schema_and_the_daemons_topics() -> None:
    configs = discovery_configs(discovery_prefix="homeassistant", node_id="kitchen-pi", status_topic=STATUS,
                                stats_topic=STATS, sw_version="1.2.3", hw_version="Raspberry Pi 5 Model B")
    assert len(configs) == len(SENSORS) == 4
    for topic, config in configs.items():
        assert schema_problems(topic, config) == [], topic
    assert len({c["unique_id"] for c in configs.values()}) == 4
    assert len({c["default_entity_id"] for c in configs.values()}) == 4
    devices = [c["device"] for c in configs.values()]
    assert all(d == devices[0] for d in devices)  # one device holding the four entities
    assert devices[0]["sw_version"] == "1.2.3" and devices[0]["hw_version"] == "Raspberry Pi 5 Model B"
    units = {c["unique_id"]: (c.get("unit_of_measurement"), c.get("state_class")) for c in configs.values()}
    assert units == {"fer_edge_kitchen_pi_emotion": (None, None),
                     "fer_edge_kitchen_pi_confidence": ("%", "measurement"),
                     "fer_edge_kitchen_pi_faces": (None, "measurement"),
                     "fer_edge_kitchen_pi_fps": ("fps", "measurement")}


def test_node_ids_drop_characters_discovery_refuses() -> None:
    assert discovery_node_id("kitchen.pi 4") == "kitchen_pi_4"
    assert discovery_node_id("Door-Cam_2") == "Door-Cam_2"


@pytest.mark.parametrize("overrides, message", [
    ({"homeassistant.node_id": "kitchen.pi"}, "homeassistant.node_id: 'kitchen.pi' may only hold letters, "
                                              "digits, _ and -"),
    ({"homeassistant.discovery_prefix": "ha/#"}, "homeassistant.discovery_prefix: 'ha/#' must be a non-empty "
                                                 "topic without +, # or a trailing /"),
])
def test_bad_homeassistant_settings_are_config_errors(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(None, overrides, environ={})
    assert error.value.problems == [message]


def test_value_templates_read_the_stats_of_a_real_run(tmp_path: Path) -> None:
    video = make_face_video(tmp_path / "astronaut.avi", frames=4, fps=15)
    config = load_config(None, {"source.spec": str(video), "source.realtime": False}, environ={})
    pipeline = build_pipeline(config)
    pipeline.grabber.start()
    try:
        for _ in range(4):
            if (frame := pipeline.grabber.get(timeout=5)) is not None:
                pipeline.process(frame)
    finally:
        pipeline.grabber.stop()
    stats = pipeline.stats()
    assert stats["faces"] == 1 and stats["emotion"] in LABELS and 0 < stats["confidence"] <= 1
    templates = {spec.key: spec.value_template for spec in SENSORS}
    assert render(templates["emotion"], stats) == stats["emotion"]
    assert float(render(templates["confidence"], stats)) == pytest.approx(stats["confidence"] * 100, abs=0.05)
    assert render(templates["faces"], stats) == "1"
    assert float(render(templates["fps"], stats)) == stats["fps"]
    # No face: the emotion reads "none" and the confidence "None", which Home Assistant shows as unknown.
    nobody = {**stats, "faces": 0, "emotion": None, "confidence": None}
    rendered = [render(templates[key], nobody) for key in ("emotion", "confidence", "faces")]
    assert rendered == ["none", "None", "0"]


def test_configs_are_retained_for_a_late_subscriber(mosquitto, mqtt_collector, discovery) -> None:
    mqtt_collector(mosquitto, "homeassistant/#").wait_for_count(is_config, 4)
    late = mqtt_collector(mosquitto, "homeassistant/#").wait_for_count(is_config, 4)
    assert all(message.retain and message.qos == 1 for message in late)
    assert {m.topic: m.json() for m in late} == discovery.configs
    for message in late:
        assert schema_problems(message.topic, message.json()) == []


def test_configs_are_sent_again_when_home_assistant_comes_online(mosquitto, mqtt_collector,
                                                                 discovery) -> None:
    collector = mqtt_collector(mosquitto, "homeassistant/sensor/#")
    collector.wait_for_count(is_config, 4)
    home_assistant = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-home-assistant")
    home_assistant.connect(mosquitto.host, mosquitto.port)
    home_assistant.loop_start()
    try:
        home_assistant.publish("homeassistant/status", "offline", qos=1).wait_for_publish(5)
        home_assistant.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
        collector.wait_for_count(is_config, 8)
        time.sleep(0.3)
        assert len(collector.matching(is_config)) == 8  # "offline" sent nothing
    finally:
        home_assistant.loop_stop()
        home_assistant.disconnect()


def test_configs_are_sent_again_after_the_broker_forgot_them(mosquitto, mqtt_collector, discovery,
                                                            publisher) -> None:
    mqtt_collector(mosquitto, "homeassistant/#").wait_for_count(is_config, 4)
    mosquitto.stop()  # no persistence: its retained messages are gone
    wait_until(lambda: not publisher.connected, what="the publisher to notice")
    mosquitto.start()
    wait_until(lambda: publisher.connected, timeout=10, what="the publisher to reconnect")
    mqtt_collector(mosquitto, "homeassistant/#").wait_for_count(is_config, 4)


@pytest.mark.slow
def test_remove_command_clears_the_configs_and_leaves_the_status_alone(mosquitto, mqtt_collector,
                                                                       discovery) -> None:
    live = mqtt_collector(mosquitto, "#")
    live.wait_for_count(is_config, 4)
    live.wait_for(topic_is(STATUS, "online"))
    result = subprocess.run([sys.executable, "-m", "fer_edge", "ha-discovery", "--remove",
                             "--device-id", "test", "--mqtt-host", mosquitto.host,
                             "--mqtt-port", str(mosquitto.port)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT,
                            env={k: v for k, v in os.environ.items() if not k.startswith("FER_EDGE_")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"removed {topic}" for topic in discovery.configs]
    emptied = live.wait_for_count(lambda m: is_config(m) and m.payload == b"", 4)
    assert {m.topic for m in emptied} == set(discovery.configs)
    # A late subscriber gets the daemon's retained "online" and no config at all.
    late = mqtt_collector(mosquitto, "#")
    late.wait_for(topic_is(STATUS, "online"))
    time.sleep(0.3)
    assert not late.matching(is_config)
    assert [m.text for m in live.matching(topic_is(STATUS))] == ["online"]


@pytest.mark.slow
def test_daemon_publishes_discovery_when_enabled(mosquitto, mqtt_collector, tmp_path: Path) -> None:
    video = make_face_video(tmp_path / "astronaut.avi", frames=6, fps=15)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FER_EDGE_")}
    env.update(FER_EDGE_HOMEASSISTANT__ENABLED="true", FER_EDGE_HOMEASSISTANT__NODE_ID="hall")
    result = subprocess.run([sys.executable, "-m", "fer_edge", "run", "--source", str(video), "--no-realtime",
                             "--mqtt-host", mosquitto.host, "--mqtt-port", str(mosquitto.port),
                             "--device-id", "test"], capture_output=True, text=True, timeout=120,
                            cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    configs = mqtt_collector(mosquitto, "homeassistant/#").wait_for_count(is_config, 4)
    assert {m.topic for m in configs} == {f"homeassistant/sensor/hall/{s.key}/config" for s in SENSORS}
    for message in configs:
        assert message.retain and schema_problems(message.topic, message.json()) == []
