"""Home Assistant MQTT discovery (opt-in): the board's entities, published, kept and removed.

One retained config per entity at ``<discovery_prefix>/<component>/<node_id>/<key>/config``
(the entities and their ids: fer_edge.mqtt.ha_entities). They read the board's state and stats
topics and take their availability from the status topic. Configs are re-published on every
connection (a broker restarted without persistence forgets retained messages) and whenever
Home Assistant announces "online" on its birth topic. ``fer-edge ha-discovery --remove``
deletes them with empty retained payloads; the entities then disappear from Home Assistant.

Two boards whose configs land on the same topics would overwrite each other's entities. The
daemon reads back the retained configs on its own topics and warns, once, when one names
another board's status topic.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .ha_entities import board_key, discovery_configs, discovery_node_id, entity_specs, status_topic_of
from .state import state_topic

if TYPE_CHECKING:
    from ..config import Config
    from .publisher import MqttPublisher

__all__ = ["HomeAssistantDiscovery", "board_key", "discovery_configs", "discovery_node_id", "entity_specs"]

log = logging.getLogger(__name__)

BOARD_MODEL_FILE = Path("/proc/device-tree/model")  # Raspberry Pi and Jetson both have it
ONLINE = b"online"
BIRTH_DELAY = 1.0  # seconds: births within it are answered together
BIRTH_MIN_GAP = 10.0  # seconds between two re-sends


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


class HomeAssistantDiscovery:
    """Publishes and removes the discovery configs through the daemon's MqttPublisher."""

    def __init__(self, publisher: MqttPublisher, configs: dict[str, dict[str, Any]],
                 birth_topic: str = "homeassistant/status") -> None:
        self.publisher, self.configs, self.birth_topic = publisher, configs, birth_topic
        self._clashes: set[str] = set()  # the other boards' status topics, warned about once each
        self._births = 0  # "online" messages since the last re-send
        self.resends = 0  # re-sends that births caused
        self._resend: threading.Timer | None = None
        self._last_resend = -math.inf
        self._birth_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Config, publisher: MqttPublisher,
                    labels: tuple[str, ...]) -> HomeAssistantDiscovery:
        """The configs of the [homeassistant] table, on the publisher's own topics, for a model's labels."""
        ha = config.homeassistant
        configs = discovery_configs(discovery_prefix=ha.discovery_prefix,
                                    node_id=ha.node_id or discovery_node_id(config.device_id),
                                    device_id=config.device_id, status_topic=publisher.status_topic,
                                    state_topic=state_topic(config.mqtt.prefix, config.device_id),
                                    stats_topic=publisher.stats_topic, labels=labels,
                                    sw_version=software_version(), hw_version=board_model())
        return cls(publisher, configs, ha.birth_topic)

    def attach(self) -> None:
        """Publish on every connection and on Home Assistant's "online", and watch our config topics for
        another board's configs; call before publisher.start()."""
        self.publisher.add_connect_callback(self.publish)
        self.publisher.subscribe(self.birth_topic, self._on_birth)
        for topic in self.configs:
            self.publisher.subscribe(topic, functools.partial(self._on_config, topic))

    def publish(self, *, quiet: bool = False) -> None:
        """Queue every config, retained, at QoS 1; ``quiet``: without the log line (ha-discovery
        prints each config the broker acknowledged instead)."""
        for topic, config in self.configs.items():
            self.publisher.publish(topic, json.dumps(config, separators=(",", ":")), qos=1, retain=True)
        if not quiet:
            log.info("queued %d Home Assistant discovery configs for the broker", len(self.configs))

    def remove(self) -> None:
        """Queue an empty retained payload for every config: Home Assistant drops the entities."""
        for topic in self.configs:
            self.publisher.publish(topic, b"", qos=1, retain=True)

    def _on_birth(self, payload: bytes) -> None:
        # Home Assistant restarted (or its MQTT integration reloaded): it may have lost them. Births
        # are debounced: a flood of "online" (anyone may publish there) makes one re-send, at most
        # one per BIRTH_MIN_GAP, so it can neither fill the queue ahead of the events nor the log.
        if payload.strip() != ONLINE:
            return
        with self._birth_lock:
            self._births += 1
            if self._resend is not None:
                return
            delay = max(BIRTH_DELAY, self._last_resend + BIRTH_MIN_GAP - time.monotonic())
            self._resend = threading.Timer(delay, self._resend_now)
            self._resend.daemon = True
            self._resend.start()
        log.info("Home Assistant is online on %s; re-sending discovery in %.1f s", self.birth_topic, delay)

    def _resend_now(self) -> None:
        with self._birth_lock:
            self._resend, self._last_resend = None, time.monotonic()
            births, self._births = self._births, 0
            self.resends += 1
        if births > 1:
            log.info("%d \"online\" messages on %s answered by one re-send", births, self.birth_topic)
        self.publish()

    def close(self) -> None:
        """Cancel a pending re-send (the daemon stops)."""
        with self._birth_lock:
            if self._resend is not None:
                self._resend.cancel()
                self._resend = None

    def _on_config(self, topic: str, payload: bytes) -> None:
        # Our own configs come back too: another board's names another status topic.
        try:
            theirs = status_topic_of(json.loads(payload)) if payload else None
        except (ValueError, AttributeError):
            theirs = "(not a fer-edge config)"
        ours = status_topic_of(self.configs[topic])
        if theirs is None or theirs == ours or str(theirs) in self._clashes:
            return
        self._clashes.add(str(theirs))
        log.warning("the Home Assistant config %s (and this board's others) is also published by another "
                    "board, whose status topic is %s: the two overwrite each other's entities. Give each "
                    "board its own mqtt.device_id, or set homeassistant.node_id", topic, theirs)
