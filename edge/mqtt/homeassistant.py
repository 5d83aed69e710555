"""Home Assistant MQTT discovery (opt-in): the daemon's emotion, confidence, faces and fps as sensors.

One retained config per sensor at ``<discovery_prefix>/sensor/<node_id>/<key>/config``. The
sensors read the daemon's stats topic through value templates and take its availability from
the status topic, so no extra state messages are sent. Configs are re-published on every
connection (a broker restarted without persistence forgets retained messages) and whenever
Home Assistant announces "online" on its birth topic. ``fer-edge ha-discovery --remove``
deletes them with empty retained payloads; the entities then disappear from Home Assistant.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config
    from .publisher import MqttPublisher

log = logging.getLogger(__name__)

BOARD_MODEL_FILE = Path("/proc/device-tree/model")  # Raspberry Pi and Jetson both have it
ONLINE = b"online"


@dataclass(frozen=True)
class SensorSpec:
    """One Home Assistant sensor fed from a field of the stats payload."""

    key: str  # the topic's object id and the end of the unique id
    name: str
    value_template: str
    unit: str | None = None
    state_class: str | None = None
    icon: str | None = None
    entity_category: str | None = None


# A template that renders "None" leaves the sensor "unknown" (Home Assistant's PAYLOAD_NONE):
# the confidence of no face is unknown, not 0 %.
SENSORS = (
    SensorSpec("emotion", "Emotion", "{{ value_json.emotion if value_json.emotion else 'none' }}",
               icon="mdi:emoticon-outline"),
    SensorSpec("confidence", "Emotion confidence",
               "{{ (value_json.confidence * 100) | round(1) if value_json.confidence is number else None }}",
               unit="%", state_class="measurement", icon="mdi:gauge"),
    SensorSpec("faces", "Faces in view", "{{ value_json.faces }}", state_class="measurement",
               icon="mdi:face-recognition"),
    SensorSpec("fps", "Frame rate", "{{ value_json.fps }}", unit="fps", state_class="measurement",
               icon="mdi:speedometer", entity_category="diagnostic"),
)


def discovery_node_id(device_id: str) -> str:
    """The device id with the characters a discovery topic refuses replaced by _."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", device_id)


def software_version() -> str:
    """The installed fer-edge version, or "unknown" in a bare source checkout."""
    try:
        return metadata.version("fer-edge")
    except metadata.PackageNotFoundError:
        return "unknown"


def board_model() -> str | None:
    """The board's model from the device tree ("Raspberry Pi 4 Model B Rev 1.5"), when known."""
    try:
        return BOARD_MODEL_FILE.read_bytes().rstrip(b"\0").decode(errors="replace").strip() or None
    except OSError:
        return None


def discovery_configs(*, discovery_prefix: str, node_id: str, status_topic: str, stats_topic: str,
                      sw_version: str | None = None,
                      hw_version: str | None = None) -> dict[str, dict[str, Any]]:
    """{config topic: config payload} of every sensor, in Home Assistant's discovery schema."""
    version = sw_version or software_version()
    slug = re.sub(r"[^a-z0-9_]", "_", node_id.lower())  # entity ids are lower-case slugs
    device: dict[str, Any] = {"identifiers": [f"fer_edge_{slug}"], "name": f"fer-edge {node_id}",
                              "manufacturer": "fer-edge", "model": "Facial expression recognizer",
                              "sw_version": version}
    if hw_version:
        device["hw_version"] = hw_version
    configs = {}
    for spec in SENSORS:
        unique_id = f"fer_edge_{slug}_{spec.key}"
        config: dict[str, Any] = {
            "name": spec.name,
            "unique_id": unique_id,
            # default_entity_id replaced object_id in Home Assistant 2025.10 (object_id ended in 2026.4).
            "default_entity_id": f"sensor.{unique_id}",
            "state_topic": stats_topic,
            "value_template": spec.value_template,
            "availability_topic": status_topic,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
            "origin": {"name": "fer-edge", "sw_version": version},
        }
        optional = {"unit_of_measurement": spec.unit, "state_class": spec.state_class, "icon": spec.icon,
                    "entity_category": spec.entity_category}
        config.update({key: value for key, value in optional.items() if value is not None})
        configs[f"{discovery_prefix}/sensor/{node_id}/{spec.key}/config"] = config
    return configs


class HomeAssistantDiscovery:
    """Publishes and removes the discovery configs through the daemon's MqttPublisher."""

    def __init__(self, publisher: MqttPublisher, configs: dict[str, dict[str, Any]],
                 birth_topic: str = "homeassistant/status"):
        self.publisher, self.configs, self.birth_topic = publisher, configs, birth_topic

    @classmethod
    def from_config(cls, config: Config, publisher: MqttPublisher) -> HomeAssistantDiscovery:
        """The configs of the [homeassistant] table, on the publisher's own topics."""
        ha = config.homeassistant
        configs = discovery_configs(discovery_prefix=ha.discovery_prefix,
                                    node_id=ha.node_id or discovery_node_id(config.device_id),
                                    status_topic=publisher.status_topic, stats_topic=publisher.stats_topic,
                                    hw_version=board_model())
        return cls(publisher, configs, ha.birth_topic)

    def attach(self) -> None:
        """Publish on every connection and on Home Assistant's "online"; call before publisher.start()."""
        self.publisher.add_connect_callback(self.publish)
        self.publisher.subscribe(self.birth_topic, self._on_birth)

    def publish(self) -> None:
        """Queue every config, retained, at QoS 1."""
        for topic, config in self.configs.items():
            self.publisher.publish(topic, json.dumps(config, separators=(",", ":")), qos=1, retain=True)
        log.info("published %d Home Assistant discovery configs", len(self.configs))

    def remove(self) -> None:
        """Queue an empty retained payload for every config: Home Assistant drops the entities."""
        for topic in self.configs:
            self.publisher.publish(topic, b"", qos=1, retain=True)

    def _on_birth(self, payload: bytes) -> None:
        # Home Assistant restarted (or its MQTT integration reloaded): it may have lost them.
        if payload.strip() == ONLINE:
            log.info("Home Assistant is online on %s; re-sending discovery", self.birth_topic)
            self.publish()
