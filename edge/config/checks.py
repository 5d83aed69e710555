"""Rules that span fields, checked once the tables are built; none of them reads a file.

Topics follow MQTT 5 (sections 1.5.4, 4.7): UTF-8 without control characters, at most
65,535 bytes, no wildcards in a topic we publish to, and no leading `$` (reserved for the
broker's own topics, `$SYS/...`), so a broker's refusal is a config error, not silence.
"""

from __future__ import annotations

import os

from ..errors import SourceError
from ..sources.spec import parse_spec
from .rules import mqtt_text_problem
from .tables import Config

# The shipped unit's TimeoutStartSec= (a test holds them equal): the camera must open within it,
# after the imports and the model load, which take up to START_MARGIN_S on a small Pi.
UNIT_START_TIMEOUT_S = 90
START_MARGIN_S = 30
# Host names boards ship with: a device id defaulted from one is likely shared with other boards.
STOCK_HOST_NAMES = frozenset({"raspberrypi", "localhost", "ubuntu", "debian", "tegra-ubuntu", "jetson"})


def topic_problem(topic: str, *, whole: bool = True) -> str | None:
    """Why a broker would refuse a PUBLISH to ``topic`` (None if it would not).

    ``whole`` False checks a part of a topic (a device id): emptiness and `$` only matter at the start.
    """
    if whole and not topic:
        return "is empty"
    if problem := mqtt_text_problem(topic):
        return problem
    if "+" in topic or "#" in topic:
        return "holds a wildcard (+ or #)"
    if whole and topic.startswith("$"):
        return "starts with $, which brokers keep for their own topics ($SYS/...)"
    return None


def topic_problems(prefix: str, device_id: str, discovery_prefix: str | None = None) -> list[str]:
    """Topics a broker would refuse, caught before the daemon runs and delivers nothing."""
    problems = []
    parts = [("mqtt.prefix", prefix, True), ("mqtt.device_id", device_id, False)]
    if discovery_prefix is not None:
        parts.append(("homeassistant.discovery_prefix", discovery_prefix, True))
    for key, value, whole in parts:
        if problem := topic_problem(value, whole=whole):
            problems.append(f"{key}: {value[:60]!r}{'...' if len(value) > 60 else ''} {problem}")
    if not problems:  # each part is fine: only the length of the whole can still fail
        longest = f"{prefix}/{device_id}/emotion"
        if problem := topic_problem(longest):
            problems.append(f"mqtt.prefix, mqtt.device_id: the topic {longest[:60]!r}... {problem}")
    return problems


def source_spec_problem(spec: str) -> str | None:
    """Why ``open_source`` would refuse ``spec`` (None if it would build a source from it)."""
    try:
        parse_spec(spec)
    except SourceError as exc:
        return str(exc)
    return None


def shared_identity_warning(config: Config) -> str | None:
    """A warning when the device id comes from a host name that many boards share."""
    device_id = config.device_id
    if config.mqtt.device_id or device_id.lower() not in STOCK_HOST_NAMES:
        return None
    return (f"mqtt.device_id is empty, so the host name {device_id!r} names this board's topics; every "
            f"board called {device_id!r} publishes to the same ones: set mqtt.device_id, unique per board")


def threads_warning(config: Config) -> str | None:
    """A warning when model.threads is more than the cores this process may run on."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if config.model.threads <= cores:
        return None
    return (f"model.threads = {config.model.threads} is more than the {cores} cores this process may use: "
            f"the extra threads only wait for a core and each face takes longer; set it to {cores} or less")


def cross_field_problems(config: Config) -> list[str]:
    """The rules between fields and tables, as "<dotted.key>: <problem>" lines."""
    mqtt = config.mqtt
    problems = []
    if mqtt.password_file and not mqtt.username:
        problems.append("mqtt.password_file: a password needs mqtt.username as well")
    if bool(mqtt.cert_file) != bool(mqtt.key_file):
        problems.append("mqtt.cert_file, mqtt.key_file: a client certificate needs both files")
    if not mqtt.tls and (mqtt.ca_file or mqtt.cert_file or mqtt.tls_insecure):
        problems.append("mqtt.tls: ca_file, cert_file and tls_insecure only apply with tls = true")
    if config.source.open_timeout > UNIT_START_TIMEOUT_S - START_MARGIN_S:
        problems.append(f"source.open_timeout: {config.source.open_timeout:g} s does not fit the systemd "
                        f"unit's TimeoutStartSec={UNIT_START_TIMEOUT_S} (the camera opens before the daemon "
                        f"reports ready, after imports and the model load); use at most "
                        f"{UNIT_START_TIMEOUT_S - START_MARGIN_S} s")
    if config.http.preview and not config.http.enabled:
        problems.append("http.preview: the preview is served over HTTP; set http.enabled = true too")
    discovery = config.homeassistant.discovery_prefix if config.homeassistant.enabled else None
    return problems + topic_problems(mqtt.prefix, config.device_id, discovery)
