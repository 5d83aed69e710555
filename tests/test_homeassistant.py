"""Home Assistant MQTT discovery against a real broker, checked against Home Assistant's own rules.

The rules below are those of Home Assistant's MQTT discovery schemas (2026) for each platform
we use: topic ``<prefix>/<component>/[<node_id>/]<object_id>/config`` with ids of [a-zA-Z0-9_-];
``state_topic`` required; a ``device`` needs ``identifiers`` or ``connections`` and its entities a
``unique_id``; ``default_entity_id`` replaced ``object_id`` (removed in 2026.4); unknown keys are
silently dropped (so a typo would go unnoticed: we check against the known keys). sensor:
``options`` only with ``device_class: enum``, not empty, and never with a unit or a state class
(``validate_sensor_state_and_device_class_config``); binary_sensor: the template renders
``payload_on`` or ``payload_off``; event: ``event_types`` required, retained messages ignored, the
template renders a JSON object whose ``event_type`` is one of them (``MqttEvent._event_received``).
"""

from __future__ import annotations

import json
import logging
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
from fer_edge.classifier import DEFAULT_LABELS
from fer_edge.config import MqttConfig, load_config
from fer_edge.daemon import build_pipeline
from fer_edge.errors import ConfigError
from fer_edge.mqtt.homeassistant import (
    HomeAssistantDiscovery,
    board_key,
    discovery_configs,
    discovery_node_id,
    entity_specs,
)
from fer_edge.mqtt.publisher import MqttPublisher
from fer_edge.mqtt.state import BoardState
from paho.mqtt.enums import CallbackAPIVersion
from support.mqtt import Received, topic_is, wait_until

try:
    import jinja2  # the template engine Home Assistant renders value_template with
except ImportError:
    pytest.fail("the Home Assistant tests render value templates with Jinja2: pip install jinja2",
                pytrace=False)

ROOT = Path(__file__).resolve().parents[1]
STATUS, STATE, STATS = "fer-edge/test/status", "fer-edge/test/state", "fer-edge/test/stats"
CONFIG_TOPIC = re.compile(r"homeassistant/(sensor|binary_sensor|event)/[A-Za-z0-9_-]+/[A-Za-z0-9_-]+/config")
COMMON_KEYS = {
    "name", "unique_id", "default_entity_id", "state_topic", "value_template", "availability_topic",
    "payload_available", "payload_not_available", "device", "origin", "device_class", "icon",
    "entity_category", "qos", "enabled_by_default", "json_attributes_topic", "json_attributes_template",
    "encoding", "availability_mode", "availability_template", "availability"}
PLATFORM_KEYS = {
    "sensor": COMMON_KEYS | {"unit_of_measurement", "state_class", "expire_after", "force_update", "options",
                             "suggested_display_precision", "last_reset_value_template"},
    "binary_sensor": COMMON_KEYS | {"payload_on", "payload_off", "expire_after", "force_update", "off_delay"},
    "event": COMMON_KEYS | {"event_types"},
}
BINARY_SENSOR_CLASSES = {"occupancy", "presence", "motion", "connectivity", "problem", "running"}
N_ENTITIES = 6
DEVICE_KEYS = {"identifiers", "connections", "manufacturer", "model", "model_id", "name", "hw_version",
               "serial_number", "sw_version", "via_device", "suggested_area", "configuration_url"}
LABELS = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}


def is_config(message: Received) -> bool:
    return CONFIG_TOPIC.fullmatch(message.topic) is not None


def platform_problems(component: str, config: dict[str, Any]) -> list[str]:
    """Each platform's own rules (Home Assistant's sensor, binary_sensor and event schemas)."""
    if component == "sensor":
        options, enum = config.get("options"), config.get("device_class") == "enum"
        return [message for ok, message in [
            (options is None or (isinstance(options, list) and bool(options)
                                 and all(isinstance(o, str) for o in options)),
             "options must be a non-empty list of strings"),
            (options is None or enum, "options need device_class enum"),
            (not enum or options, "an enum sensor needs its options"),
            (options is None or not ({"state_class", "unit_of_measurement"} & set(config)),
             "options with a state class or a unit"),
            (config.get("state_class") in (None, "measurement", "total", "total_increasing"),
             "bad state_class"),
        ] if not ok]
    if component == "binary_sensor":
        return [message for ok, message in [
            (config.get("device_class") in BINARY_SENSOR_CLASSES | {None}, "unknown binary_sensor class"),
            (isinstance(config.get("payload_on", "ON"), str)
             and isinstance(config.get("payload_off", "OFF"), str),
             "payloads must be strings"),
        ] if not ok]
    types = config.get("event_types")
    return [] if isinstance(types, list) and types and all(isinstance(t, str) for t in types) else \
        ["event_types must be a non-empty list of strings"]


def availability_checks(config: dict[str, Any]) -> list[tuple[bool, str]]:
    """The daemon's status topic, alone or (for what the camera sees) with the state's camera_up.

    Home Assistant takes ``availability_topic`` or an ``availability`` list, never both; with a
    list and ``availability_mode: all``, every entry must say available."""
    payloads = ("online", "offline")
    if "availability" not in config:
        return [(config.get("availability_topic") == STATUS, "availability_topic is not the status topic"),
                ((config.get("payload_available"), config.get("payload_not_available")) == payloads,
                 "availability payloads differ from the status topic's")]
    entries = config["availability"]
    return [
        (not {"availability_topic", "payload_available", "payload_not_available"} & set(config),
         "availability and availability_topic together"),
        (config.get("availability_mode") == "all", "availability_mode is not all"),
        ([e.get("topic") for e in entries] == [STATUS, STATE], "availability is not the status and state"),
        (all((e.get("payload_available"), e.get("payload_not_available")) == payloads for e in entries),
         "availability payloads are not online/offline"),
        (all(not set(e) - {"topic", "payload_available", "payload_not_available", "value_template"}
             for e in entries), "unknown availability keys"),
    ]


def schema_problems(topic: str, config: dict[str, Any]) -> list[str]:
    """Where one config breaks Home Assistant's discovery rules for its platform (or the daemon's topics)."""
    device = config.get("device", {})
    match = CONFIG_TOPIC.fullmatch(topic)
    component = match.group(1) if match else "sensor"
    known = PLATFORM_KEYS[component]
    checks = [
        (match is not None, f"bad discovery topic {topic}"),
        (not set(config) - known, f"unknown keys {set(config) - known}"),
        ({"name", "unique_id", "state_topic", "device"} <= set(config), "a required key is missing"),
        (re.fullmatch(rf"{component}\.[a-z0-9_]+", config.get("default_entity_id", "")) is not None,
         f"default_entity_id is not {component}.<slug>"),
        (config.get("state_topic") in (STATE, STATS), "state_topic is not the daemon's state or stats topic"),
        *availability_checks(config),
        (bool(device.get("identifiers")) and all(isinstance(i, str) for i in device["identifiers"]),
         "device has no identifiers"),
        (not set(device) - DEVICE_KEYS, f"unknown device keys {set(device) - DEVICE_KEYS}"),
        (bool(config.get("origin", {}).get("name")), "origin has no name"),
        (config.get("entity_category") in (None, "config", "diagnostic"), "bad entity_category"),
        (not config.get("name", "").lower().startswith(device.get("name", "\0").lower()),
         "entity name starts with the device name"),
        (config.get("icon", "mdi:").startswith("mdi:"), "icon is not an mdi: icon"),
    ]
    return [message for ok, message in checks if not ok] + platform_problems(component, config)


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
    discovery = HomeAssistantDiscovery.from_config(config, publisher, DEFAULT_LABELS)
    discovery.attach()
    publisher.start()
    return discovery


def kitchen_configs(device_id: str = "kitchen-pi", node_id: str | None = None) -> dict[str, dict[str, Any]]:
    return discovery_configs(discovery_prefix="homeassistant",
                             node_id=node_id or discovery_node_id(device_id),
                             device_id=device_id, status_topic=STATUS, state_topic=STATE, stats_topic=STATS,
                             labels=DEFAULT_LABELS, sw_version="1.2.3", hw_version="Raspberry Pi 5 Model B")


def test_configs_follow_home_assistants_schema_and_the_daemons_topics() -> None:
    configs = kitchen_configs()
    assert len(configs) == len(entity_specs(DEFAULT_LABELS)) == N_ENTITIES
    for topic, config in configs.items():
        assert schema_problems(topic, config) == [], topic
    assert len({c["unique_id"] for c in configs.values()}) == N_ENTITIES
    assert len({c["default_entity_id"] for c in configs.values()}) == N_ENTITIES
    devices = [c["device"] for c in configs.values()]
    assert all(d == devices[0] for d in devices)  # one device holding every entity
    assert devices[0]["sw_version"] == "1.2.3" and devices[0]["hw_version"] == "Raspberry Pi 5 Model B"
    by_id = {c["unique_id"]: c for c in configs.values()}
    kinds = {uid: (c["default_entity_id"].split(".")[0], c["state_topic"], c.get("device_class"),
                   c.get("unit_of_measurement"), c.get("state_class")) for uid, c in by_id.items()}
    assert kinds == {"fer_edge_kitchen_pi_emotion": ("sensor", STATE, "enum", None, None),
                     "fer_edge_kitchen_pi_face": ("binary_sensor", STATE, "occupancy", None, None),
                     "fer_edge_kitchen_pi_emotion_change": ("event", STATE, None, None, None),
                     "fer_edge_kitchen_pi_confidence": ("sensor", STATS, None, "%", "measurement"),
                     "fer_edge_kitchen_pi_faces": ("sensor", STATS, None, None, "measurement"),
                     "fer_edge_kitchen_pi_fps": ("sensor", STATS, None, "fps", "measurement")}
    assert by_id["fer_edge_kitchen_pi_emotion"]["options"] == [*DEFAULT_LABELS, "none"]
    assert by_id["fer_edge_kitchen_pi_emotion_change"]["event_types"] == [*DEFAULT_LABELS, "none"]


@pytest.mark.parametrize("config, problem", [
    ({"device_class": "enum"}, "an enum sensor needs its options"),
    ({"device_class": "enum", "options": []}, "options must be a non-empty list of strings"),
    ({"options": ["a"]}, "options need device_class enum"),
    ({"device_class": "enum", "options": ["a"], "state_class": "measurement"}, "options with a state class"),
])
def test_the_schema_rules_catch_what_home_assistant_refuses(config: dict[str, Any], problem: str) -> None:
    assert any(problem in p for p in platform_problems("sensor", config))


NAMES = ["door-1", "door_1", "Door-1", "DOOR-1", "Tür-1", "door.1", "door 1", "door--1", "-door-1", "door-1_"]


def test_boards_whose_names_differ_never_share_an_id_or_a_topic() -> None:
    # Before: door-1, door_1, Door-1 and Tür-1 all had the unique ids fer_edge_door_1_*, and door_1 and
    # door.1 wrote the same config topics: Home Assistant kept one board's entities.
    boards = {name: kitchen_configs(name) for name in NAMES}
    for name, configs in boards.items():
        for topic, config in configs.items():
            assert schema_problems(topic, config) == [], (name, topic)
    for field in ("unique_id", "default_entity_id"):
        ids = [c[field] for configs in boards.values() for c in configs.values()]
        assert len(ids) == len(set(ids)) == len(NAMES) * N_ENTITIES, field
    topics = [topic for configs in boards.values() for topic in configs]
    assert len(topics) == len(set(topics))
    identifiers = {configs[next(iter(configs))]["device"]["identifiers"][0] for configs in boards.values()}
    assert len(identifiers) == len(NAMES)


def test_host_like_names_keep_their_plain_ids() -> None:
    # what a host name looks like keeps the ids it had, so existing entities stay as they were
    assert board_key("kitchen-pi") == "kitchen_pi" and discovery_node_id("kitchen-pi") == "kitchen-pi"
    assert board_key("door_1").startswith("door_1__") and board_key("Door-1").startswith("door_1__")
    assert re.fullmatch(r"T_r-1_[0-9a-f]{10}", discovery_node_id("Tür-1"))
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


class StateCollector:
    """Stands in for the publisher: the board state's messages as (topic, payload, qos, retain)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], int, bool]] = []

    def publish(self, topic: str, payload: str | bytes, *, qos: int = 1, retain: bool = False) -> None:
        self.sent.append((topic, json.loads(payload), qos, retain))


def test_value_templates_read_the_state_and_stats_of_a_real_run(tmp_path: Path) -> None:
    video = make_face_video(tmp_path / "astronaut.avi", frames=4, fps=15)
    config = load_config(None, {"source.spec": str(video), "source.realtime": False}, environ={})
    pipeline = build_pipeline(config)
    sent = StateCollector()
    state = BoardState(sent, STATE, "test")
    pipeline.grabber.start()
    try:
        for _ in range(4):
            if (frame := pipeline.grabber.get(timeout=5)) is not None:
                pipeline.process(frame)
                health = pipeline.health()
                state.update(health.emotion, health.confidence, health.faces)
        stats = pipeline.stats()
    finally:
        pipeline.grabber.stop()
    assert stats["faces"] == 1 and stats["emotion"] in LABELS and 0 < stats["confidence"] <= 1
    # one state message (the face appeared), retained, carrying the stats' emotion
    assert [(topic, qos, retain) for topic, _, qos, retain in sent.sent] == [(STATE, 1, True)]
    payload = sent.sent[0][1]
    assert payload["emotion"] == stats["emotion"] and payload["face_present"] is True
    configs = {c["unique_id"].removeprefix("fer_edge_test_"): c for c in kitchen_configs("test").values()}
    templates = {key: c["value_template"] for key, c in configs.items()}
    assert render(templates["emotion"], payload) == stats["emotion"] in configs["emotion"]["options"]
    assert render(templates["face"], payload) == configs["face"]["payload_on"]
    fired = json.loads(render(templates["emotion_change"], payload))
    assert fired["event_type"] == stats["emotion"]
    assert fired["event_type"] in configs["emotion_change"]["event_types"]
    assert float(render(templates["confidence"], stats)) == pytest.approx(stats["confidence"] * 100, abs=0.05)
    assert render(templates["faces"], stats) == "1"
    assert float(render(templates["fps"], stats)) == stats["fps"]
    # No face: the emotion reads "none", the face is OFF, the event says "none", the confidence "None"
    # (Home Assistant shows unknown).
    nobody = {**payload, "emotion": None, "confidence": None, "face_present": False, "faces": 0}
    assert render(templates["emotion"], nobody) == "none" and render(templates["face"], nobody) == "OFF"
    assert json.loads(render(templates["emotion_change"], nobody))["event_type"] == "none"
    assert render(templates["confidence"], {**stats, "confidence": None}) == "None"
    # What the camera sees is available while it delivers frames; the frame rate always is.
    for key, config in configs.items():
        entries = config.get("availability", [])
        assert bool(entries) == (key != "fps"), key
        for entry in entries[1:]:
            assert render(entry["value_template"], payload) == "online"
            assert render(entry["value_template"], {**nobody, "camera_up": False}) == "offline"


def test_the_state_changes_only_with_the_emotion_and_a_face_missed_briefly_is_still_there() -> None:
    now = [0.0]
    sent = StateCollector()
    state = BoardState(sent, STATE, "test", absent_after=1.0, clock=lambda: now[0])
    seen = [("happy", 0.0), ("happy", 0.1), (None, 0.2), ("happy", 0.5), ("sad", 0.6), ("sad", 5.0),
            (None, 5.1), (None, 5.9), (None, 6.2), (None, 20.0)]
    for emotion, at in seen:
        now[0] = at
        state.update(emotion, 0.9 if emotion else None, 1 if emotion else 0)
    assert [(m["emotion"], m["face_present"]) for _, m, _, _ in sent.sent] == [
        ("happy", True), ("sad", True), (None, False)]  # the 0.2 s miss and the repeats sent nothing


def test_the_state_follows_the_camera_at_once() -> None:
    """A camera that stops delivering is news straight away, even during a face's short grace."""
    now = [0.0]
    sent = StateCollector()
    state = BoardState(sent, STATE, "test", absent_after=1.0, clock=lambda: now[0])
    for emotion, camera_up, at in [("happy", True, 0.0), (None, False, 0.2), (None, False, 3.0),
                                   (None, True, 4.0), ("happy", True, 4.1)]:
        now[0] = at
        state.update(emotion, 0.9 if emotion else None, 1 if emotion else 0, camera_up)
    assert [(m["emotion"], m["camera_up"]) for _, m, _, _ in sent.sent] == [
        ("happy", True), (None, False), (None, True), ("happy", True)]


def test_configs_are_retained_for_a_late_subscriber(mosquitto, mqtt_collector, discovery) -> None:
    mqtt_collector(mosquitto, "homeassistant/#").wait_for_count(is_config, N_ENTITIES)
    late = mqtt_collector(mosquitto, "homeassistant/#").wait_for_count(is_config, N_ENTITIES)
    assert all(message.retain and message.qos == 1 for message in late)
    assert {m.topic: m.json() for m in late} == discovery.configs
    for message in late:
        assert schema_problems(message.topic, message.json()) == []


def test_configs_are_sent_again_when_home_assistant_comes_online(mosquitto, mqtt_collector,
                                                                 discovery) -> None:
    collector = mqtt_collector(mosquitto, "homeassistant/#")
    collector.wait_for_count(is_config, N_ENTITIES)
    home_assistant = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-home-assistant")
    home_assistant.connect(mosquitto.host, mosquitto.port)
    home_assistant.loop_start()
    try:
        home_assistant.publish("homeassistant/status", "offline", qos=1).wait_for_publish(5)
        home_assistant.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
        collector.wait_for_count(is_config, 2 * N_ENTITIES)
        time.sleep(0.3)
        assert len(collector.matching(is_config)) == 2 * N_ENTITIES  # "offline" sent nothing
    finally:
        home_assistant.loop_stop()
        home_assistant.disconnect()


def test_configs_are_sent_again_after_the_broker_forgot_them(mosquitto, mqtt_collector, discovery,
                                                            publisher) -> None:
    mqtt_collector(mosquitto, "homeassistant/#").wait_for_count(is_config, N_ENTITIES)
    mosquitto.stop()  # no persistence: its retained messages are gone
    wait_until(lambda: not publisher.connected, what="the publisher to notice")
    mosquitto.start()
    wait_until(lambda: publisher.connected, timeout=10, what="the publisher to reconnect")
    mqtt_collector(mosquitto, "homeassistant/#").wait_for_count(is_config, N_ENTITIES)


@pytest.mark.slow
def test_remove_command_clears_the_configs_and_leaves_the_status_alone(mosquitto, mqtt_collector,
                                                                       discovery) -> None:
    live = mqtt_collector(mosquitto, "#")
    live.wait_for_count(is_config, N_ENTITIES)
    live.wait_for(topic_is(STATUS, "online"))
    result = subprocess.run([sys.executable, "-m", "fer_edge", "ha-discovery", "--remove",
                             "--device-id", "test", "--mqtt-host", mosquitto.host,
                             "--mqtt-port", str(mosquitto.port)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT,
                            env={k: v for k, v in os.environ.items() if not k.startswith("FER_EDGE_")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"removed {topic}" for topic in discovery.configs]
    emptied = live.wait_for_count(lambda m: is_config(m) and m.payload == b"", N_ENTITIES)
    assert {m.topic for m in emptied} == set(discovery.configs)
    # A late subscriber gets the daemon's retained "online" and no config at all.
    late = mqtt_collector(mosquitto, "#")
    late.wait_for(topic_is(STATUS, "online"))
    time.sleep(0.3)
    assert not late.matching(is_config)
    assert [m.text for m in live.matching(topic_is(STATUS))] == ["online"]



def ha_discovery(broker, monkeypatch, *args: str) -> int:
    """``fer-edge ha-discovery ARGS`` in this process, for the board "test" on ``broker``."""
    from fer_edge.cli import main

    for name in [k for k in os.environ if k.startswith("FER_EDGE_")]:
        monkeypatch.delenv(name)
    return main(["ha-discovery", "--device-id", "test", "--mqtt-host", broker.host,
                 "--mqtt-port", str(broker.port), "--timeout", "5", *args])


def test_discovery_command_reports_each_config_once_the_broker_has_it(mosquitto, mqtt_collector,
                                                                      monkeypatch, capsys) -> None:
    assert ha_discovery(mosquitto, monkeypatch) == 0
    printed = capsys.readouterr().out.splitlines()
    retained = mqtt_collector(mosquitto, "homeassistant/#").wait_for_count(is_config, N_ENTITIES)
    assert sorted(printed) == sorted(f"published {m.topic}" for m in retained)


def test_discovery_command_reports_only_what_the_broker_acknowledged(mosquitto_factory, mqtt_collector,
                                                                     monkeypatch, capsys, tmp_path) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite homeassistant/sensor/#\n")  # MQTT 5: the others get "Not authorized"
    broker = mosquitto_factory(f"acl_file {acl}")
    assert ha_discovery(broker, monkeypatch) == 1
    out, err = capsys.readouterr()
    allowed = [s for s in entity_specs(DEFAULT_LABELS) if s.component == "sensor"]
    assert 0 < len(allowed) < N_ENTITIES
    assert sorted(out.splitlines()) == sorted(f"published homeassistant/sensor/test/{s.key}/config"
                                              for s in allowed)
    assert (f"{len(allowed)} of the {N_ENTITIES} discovery messages went through: the broker "
            f"{broker.host}:{broker.port} refused {N_ENTITIES - len(allowed)}") in err
    assert "Traceback" not in err


def test_discovery_command_without_a_broker_prints_nothing_done(mosquitto_factory, monkeypatch,
                                                                capsys, caplog) -> None:
    caplog.set_level(logging.INFO)
    broker = mosquitto_factory(start=False)  # a free port, nothing listening
    assert ha_discovery(broker, monkeypatch, "--timeout", "1") == 1
    out, err = capsys.readouterr()
    assert out == "" and f"could not reach the broker {broker.host}:{broker.port} within 1 s" in err
    # Every line true of a command that gives up after --timeout and never connected.
    log = caplog.text
    assert "retrying until the 1 s timeout" in log
    for untrue in ("queued", "for the broker", "retrying every", "disconnected"):
        assert untrue not in log, untrue

@pytest.mark.slow
def test_daemon_publishes_discovery_when_enabled(mosquitto, mqtt_collector, tmp_path: Path) -> None:
    video = make_face_video(tmp_path / "astronaut.avi", frames=6, fps=15)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FER_EDGE_")}
    env.update(FER_EDGE_HOMEASSISTANT__ENABLED="true", FER_EDGE_HOMEASSISTANT__NODE_ID="hall")
    live = mqtt_collector(mosquitto, STATE)  # every state the run sends
    result = subprocess.run([sys.executable, "-m", "fer_edge", "run", "--source", str(video), "--no-realtime",
                             "--mqtt-host", mosquitto.host, "--mqtt-port", str(mosquitto.port),
                             "--device-id", "test"], capture_output=True, text=True, timeout=120,
                            cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    configs = mqtt_collector(mosquitto, "homeassistant/#").wait_for_count(is_config, N_ENTITIES)
    assert {m.topic for m in configs} == {f"homeassistant/{s.component}/hall/{s.key}/config"
                                          for s in entity_specs(DEFAULT_LABELS)}
    for message in configs:
        assert message.retain and schema_problems(message.topic, message.json()) == []
    # the entities' state: the face's emotion while the daemon ran
    seen = live.wait_for(lambda m: m.topic == STATE and m.json()["face_present"]).json()
    assert seen["emotion"] in LABELS and seen["camera_up"] is True
    # and retained, so Home Assistant has it as soon as it subscribes: since the daemon stopped, no camera
    state = mqtt_collector(mosquitto, STATE).wait_for(topic_is(STATE))
    assert state.retain and state.json()["face_present"] is False and state.json()["camera_up"] is False


def test_a_board_whose_configs_land_on_ours_is_named_in_a_warning(mosquitto, mqtt_collector, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="fer_edge.mqtt.homeassistant")
    boards = []
    try:
        for device_id in ("door-1", "door_1"):  # one node id set by hand on both: one set of topics
            config = load_config(None, {"mqtt.device_id": device_id, "homeassistant.node_id": "door"},
                                 environ={})
            publisher = MqttPublisher(MqttConfig(host=mosquitto.host, port=mosquitto.port),
                                      device_id=device_id)
            boards.append(publisher)
            HomeAssistantDiscovery.from_config(config, publisher, DEFAULT_LABELS).attach()
            publisher.start()
            if device_id == "door-1":
                mqtt_collector(mosquitto, "homeassistant/#").wait_for_count(is_config, N_ENTITIES)
                wait_until(lambda: boards[0].delivery.queued == 0, what="its configs to be delivered")
                assert not caplog.records  # its own configs coming back are not a clash
        # each board sees the other's configs (the first's retained, the second's live): one warning each
        wait_until(lambda: len(caplog.records) == 2, what="a warning from each board")
        time.sleep(0.3)  # the other configs of the same board add none
    finally:
        for publisher in boards:
            publisher.stop(timeout=1)
    messages = sorted(record.getMessage() for record in caplog.records)
    assert len(messages) == 2
    for message, other in zip(messages, ("fer-edge/door-1/status", "fer-edge/door_1/status"), strict=True):
        assert f"is also published by another board, whose status topic is {other}" in message
        assert "Give each board its own mqtt.device_id, or set homeassistant.node_id" in message
