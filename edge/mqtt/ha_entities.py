"""The Home Assistant entities of one board, in MQTT discovery's schema, and the ids that name them.

Three entities read the board's retained state topic (fer_edge.mqtt.state), so they change as
soon as the published emotion does: the emotion (an ``enum`` sensor whose options are the
model's labels and "none"), whether a face is in view (a ``binary_sensor``, occupancy) and an
``event`` entity that fires on each change (Home Assistant ignores retained replays for events,
so a restart fires nothing). Confidence, faces and frame rate read the stats topic, as before.

Ids: a discovery topic's node id is the device id where discovery allows its characters
([A-Za-z0-9_-]), else its allowed characters and a hash of the whole id. Unique ids and entity
ids must be lower-case slugs, where "door-1", "door_1" and "Door-1" would meet; ``board_key``
keeps the plain slug only for lower-case ids of letters and digits joined by single hyphens
(what host names look like) and adds a hash of the id to every other, so two different device
ids never share one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

HOST_LIKE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")  # its slug ("-" -> "_") has no "__" and is unique
NODE_ID_CHARS = re.compile(r"[A-Za-z0-9_-]+")
NO_FACE = "none"  # the emotion sensor's state, and the event type, when no face is in view


def short_hash(text: str) -> str:
    """Ten hex digits of SHA-256: 40 bits, so two ids of a fleet meet by chance about never."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


def board_key(device_id: str) -> str:
    """The device id as a lower-case slug for unique ids and entity ids; distinct ids, distinct keys."""
    slug = re.sub(r"[^a-z0-9]+", "_", device_id.lower()).strip("_")
    if HOST_LIKE.fullmatch(device_id):
        return slug
    return f"{slug or 'board'}__{short_hash(device_id)}"  # "__" never occurs in a host-like id's slug


def discovery_node_id(device_id: str) -> str:
    """The node id of the board's discovery topics: the device id, or its allowed characters and a hash."""
    if NODE_ID_CHARS.fullmatch(device_id):
        return device_id
    return f"{re.sub(r'[^A-Za-z0-9_-]+', '_', device_id).strip('_') or 'board'}_{short_hash(device_id)}"


@dataclass(frozen=True)
class EntitySpec:
    """One entity: its platform, key (object id), name, which topic feeds it and its platform options."""

    component: str  # "sensor", "binary_sensor" or "event"
    key: str
    name: str
    topic: str  # "state" (the board's state topic) or "stats"
    value_template: str
    options: dict[str, Any] = field(default_factory=dict)  # platform keys: unit_of_measurement, ...
    icon: str | None = None
    entity_category: str | None = None
    follows_camera: bool = True  # unavailable while the camera delivers no frames, not only offline


def entity_specs(labels: tuple[str, ...]) -> tuple[EntitySpec, ...]:
    """The board's entities for a model with these labels."""
    states = [*labels, NO_FACE]
    return (
        EntitySpec("sensor", "emotion", "Emotion", "state",
                   f"{{{{ value_json.emotion if value_json.emotion else '{NO_FACE}' }}}}",
                   {"device_class": "enum", "options": states}, icon="mdi:emoticon-outline"),
        EntitySpec("binary_sensor", "face", "Face in view", "state",
                   "{{ 'ON' if value_json.face_present else 'OFF' }}",
                   {"device_class": "occupancy", "payload_on": "ON", "payload_off": "OFF"},
                   icon="mdi:face-recognition"),
        EntitySpec("event", "emotion_change", "Emotion change", "state",
                   f"{{{{ {{'event_type': value_json.emotion or '{NO_FACE}', "
                   "'confidence': value_json.confidence} | tojson }}",
                   {"event_types": states}, icon="mdi:emoticon-excited-outline"),
        # A template that renders "None" leaves the sensor "unknown" (Home Assistant's PAYLOAD_NONE):
        # the confidence of no face is unknown, not 0 %.
        EntitySpec("sensor", "confidence", "Emotion confidence", "stats",
                   "{{ (value_json.confidence * 100) | round(1) if value_json.confidence is number "
                   "else None }}",
                   {"unit_of_measurement": "%", "state_class": "measurement"}, icon="mdi:gauge"),
        EntitySpec("sensor", "faces", "Faces in view", "stats", "{{ value_json.faces }}",
                   {"state_class": "measurement"}, icon="mdi:account-group"),
        EntitySpec("sensor", "fps", "Frame rate", "stats", "{{ value_json.fps }}",
                   {"unit_of_measurement": "fps", "state_class": "measurement"}, icon="mdi:speedometer",
                   entity_category="diagnostic", follows_camera=False),  # 0 fps is what a dead camera gives
    )


# Home Assistant renders this on the state topic's payload: "online" while frames arrive
CAMERA_AVAILABLE = "{{ 'online' if value_json.camera_up else 'offline' }}"


def availability(status_topic: str, camera_topic: str | None) -> dict[str, Any]:
    """An entity's availability keys: the daemon's status topic, and with ``camera_topic`` (the
    state topic) also the camera's ``camera_up``; both must say online (``availability_mode: all``)."""
    status = {"payload_available": "online", "payload_not_available": "offline"}
    if camera_topic is None:
        return {"availability_topic": status_topic, **status}
    return {"availability": [{"topic": status_topic, **status},
                             {"topic": camera_topic, "value_template": CAMERA_AVAILABLE, **status}],
            "availability_mode": "all"}


def status_topic_of(config: dict[str, Any]) -> Any:
    """The daemon status topic a discovery config takes its availability from (None: none found)."""
    if "availability_topic" in config:
        return config["availability_topic"]
    entries = config.get("availability")
    return entries[0].get("topic") if isinstance(entries, list) and entries and isinstance(entries[0], dict) \
        else None


def discovery_configs(*, discovery_prefix: str, node_id: str, device_id: str, status_topic: str,
                      state_topic: str, stats_topic: str, labels: tuple[str, ...], sw_version: str,
                      hw_version: str | None = None) -> dict[str, dict[str, Any]]:
    """{config topic: config payload} of every entity, in Home Assistant's discovery schema."""
    key = board_key(device_id)
    device: dict[str, Any] = {"identifiers": [f"fer_edge_{key}"], "name": f"fer-edge {device_id}",
                              "manufacturer": "fer-edge", "model": "Facial expression recognizer",
                              "sw_version": sw_version}
    if hw_version:
        device["hw_version"] = hw_version
    topics = {"state": state_topic, "stats": stats_topic}
    configs = {}
    for spec in entity_specs(labels):
        unique_id = f"fer_edge_{key}_{spec.key}"
        config: dict[str, Any] = {
            "name": spec.name,
            "unique_id": unique_id,
            # default_entity_id replaced object_id in Home Assistant 2025.10 (object_id ended in 2026.4).
            "default_entity_id": f"{spec.component}.{unique_id}",
            "state_topic": topics[spec.topic],
            "value_template": spec.value_template,
            **availability(status_topic, state_topic if spec.follows_camera else None),
            "device": device,
            "origin": {"name": "fer-edge", "sw_version": sw_version},
            **spec.options,
        }
        optional = {"icon": spec.icon, "entity_category": spec.entity_category}
        config.update({name: value for name, value in optional.items() if value is not None})
        configs[f"{discovery_prefix}/{spec.component}/{node_id}/{spec.key}/config"] = config
    return configs
