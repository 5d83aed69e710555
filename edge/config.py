"""Typed configuration: TOML file, then FER_EDGE_* environment, then command-line flags.

Every value is checked on load: unknown keys, wrong types, out-of-range values and
cross-field rules are reported together, each with its dotted key, as one ConfigError
(exit 78, so systemd does not restart-loop on a bad file).
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Jetson's JetPack 6 ships Python 3.10
    import tomli as tomllib

from .errors import ConfigError
from .faces import HaarSettings

ENV_PREFIX = "FER_EDGE_"
PASSWORD_CREDENTIAL = "mqtt_password"  # name used with systemd's LoadCredential=


@dataclass(frozen=True)
class SourceConfig:
    """Where frames come from; see edge.sources for the spec forms."""

    spec: str = "0"
    realtime: bool = True  # files only: pace at the file's frame rate
    loop: bool = False  # files only: start over at the end (soak tests, demos)
    width: int = 640
    height: int = 480
    fps: int = 30
    open_timeout: float = 10.0
    max_frames: int = 0  # stop after this many frames; 0 runs until the source ends


@dataclass(frozen=True)
class ModelConfig:
    """The int8 TFLite classifier; an empty path means the bundled model."""

    path: str = ""
    labels: str = ""
    threads: int = 1


@dataclass(frozen=True)
class TrackingConfig:
    """Face tracks across frames and the smoothing of their scores."""

    smoothing: float = 0.3  # weight of the newest scores in the moving average; 1 = none
    hysteresis: float = 0.1  # a new emotion must beat the current one by this much
    max_missed: int = 5  # detections a track may miss before it ends
    iou_threshold: float = 0.3


@dataclass(frozen=True)
class MqttConfig:
    """Broker connection; the password only ever comes from a file."""

    host: str = "localhost"
    port: int = 1883
    prefix: str = "fer-edge"
    device_id: str = ""  # empty: this machine's host name
    qos: int = 1
    keepalive: int = 30
    queue_size: int = 1000
    username: str = ""
    password_file: str = ""  # empty: $CREDENTIALS_DIRECTORY/mqtt_password when it exists
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    tls_insecure: bool = False


@dataclass(frozen=True)
class PublishConfig:
    """Which events are sent: every face every frame, or changes plus heartbeats."""

    mode: str = "change"
    heartbeat: float = 30.0  # seconds between repeats of an unchanged track's emotion
    stats_interval: float = 10.0


@dataclass(frozen=True)
class HttpConfig:
    """The local HTTP server: upload page, /predict, /healthz and the /preview.mjpg stream."""

    enabled: bool = False
    host: str = "127.0.0.1"  # loopback: the server has no authentication
    port: int = 8080
    max_upload_bytes: int = 5_000_000
    preview: bool = False  # serve the annotated camera view at /preview.mjpg


@dataclass(frozen=True)
class HomeAssistantConfig:
    """Home Assistant MQTT discovery of the daemon's sensors."""

    enabled: bool = False
    discovery_prefix: str = "homeassistant"
    node_id: str = ""  # empty: the device id, with characters discovery refuses replaced by _
    birth_topic: str = "homeassistant/status"  # Home Assistant's own default


@dataclass(frozen=True)
class Config:
    """The whole configuration of one daemon."""

    source: SourceConfig = field(default_factory=SourceConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    detector: HaarSettings = field(default_factory=HaarSettings)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    homeassistant: HomeAssistantConfig = field(default_factory=HomeAssistantConfig)
    log_level: str = "info"

    @property
    def device_id(self) -> str:
        """The MQTT device id: configured, or the host name made topic-safe."""
        return self.mqtt.device_id or re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())

    def mqtt_password(self) -> str | None:
        """The broker password from mqtt.password_file or systemd's credentials directory."""
        path = self.mqtt.password_file
        credentials = os.environ.get("CREDENTIALS_DIRECTORY")
        if not path and credentials and (Path(credentials) / PASSWORD_CREDENTIAL).is_file():
            path = str(Path(credentials) / PASSWORD_CREDENTIAL)
        if not path:
            return None
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"mqtt.password_file: cannot read {path} ({exc.strerror}); "
                              "check the path and that the service user may read it") from None


Rule = tuple[Callable[[Any], bool], str]
RULES: dict[str, Rule] = {
    "source.width": (lambda v: v > 0, "must be a positive number of pixels"),
    "source.height": (lambda v: v > 0, "must be a positive number of pixels"),
    "source.fps": (lambda v: 0 < v <= 240, "must be between 1 and 240"),
    "source.open_timeout": (lambda v: v >= 0, "must be zero or more seconds"),
    "source.max_frames": (lambda v: v >= 0, "must be zero (no limit) or more"),
    "model.threads": (lambda v: 1 <= v <= 64, "must be between 1 and 64"),
    "detector.scale_factor": (lambda v: 1.0 < v <= 2.0, "must be above 1.0 and at most 2.0"),
    "detector.min_neighbors": (lambda v: 0 <= v <= 50, "must be between 0 and 50"),
    "detector.min_size": (lambda v: v >= 10, "must be at least 10 pixels"),
    "detector.downscale_width": (lambda v: v == 0 or v >= 80, "must be 0 (off) or at least 80"),
    "detector.detect_every": (lambda v: 1 <= v <= 100, "must be between 1 and 100"),
    "tracking.smoothing": (lambda v: 0 < v <= 1, "must be above 0 and at most 1"),
    "tracking.hysteresis": (lambda v: 0 <= v < 1, "must be at least 0 and below 1"),
    "tracking.max_missed": (lambda v: v >= 0, "must be zero or more"),
    "tracking.iou_threshold": (lambda v: 0 < v < 1, "must be between 0 and 1"),
    "mqtt.host": (bool, "must not be empty"),
    "mqtt.port": (lambda v: 1 <= v <= 65535, "must be a TCP port, 1..65535"),
    "mqtt.prefix": (lambda v: bool(v) and not set(v) & set("+#") and not v.endswith("/"),
                    "must be a non-empty topic without +, # or a trailing /"),
    "mqtt.device_id": (lambda v: not set(v) & set("+#/"), "must not contain +, # or /"),
    "mqtt.qos": (lambda v: v in (0, 1, 2), "must be 0, 1 or 2"),
    "mqtt.keepalive": (lambda v: 5 <= v <= 3600, "must be between 5 and 3600 seconds"),
    "mqtt.queue_size": (lambda v: 1 <= v <= 1_000_000, "must be between 1 and 1000000"),
    "publish.mode": (lambda v: v in ("every", "change"), "must be 'every' or 'change'"),
    "publish.heartbeat": (lambda v: v > 0, "must be a positive number of seconds"),
    "publish.stats_interval": (lambda v: v > 0, "must be a positive number of seconds"),
    "http.host": (bool, "must not be empty"),
    "http.port": (lambda v: 1 <= v <= 65535, "must be a TCP port, 1..65535"),
    "http.max_upload_bytes": (lambda v: 1024 <= v <= 100_000_000, "must be between 1024 and 100000000"),
    "homeassistant.discovery_prefix": (lambda v: bool(v) and not set(v) & set("+#") and not v.endswith("/"),
                                       "must be a non-empty topic without +, # or a trailing /"),
    "homeassistant.node_id": (lambda v: re.fullmatch(r"[A-Za-z0-9_-]*", v) is not None,
                              "may only hold letters, digits, _ and -"),
    "homeassistant.birth_topic": (lambda v: bool(v) and not set(v) & set("+#"),
                                  "must be a non-empty topic without + or #"),
    "log_level": (lambda v: v in ("debug", "info", "warning", "error"),
                  "must be debug, info, warning or error"),
}


def _cross_field_problems(config: Config) -> list[str]:
    mqtt = config.mqtt
    problems = []
    if mqtt.password_file and not mqtt.username:
        problems.append("mqtt.password_file: a password needs mqtt.username as well")
    if bool(mqtt.cert_file) != bool(mqtt.key_file):
        problems.append("mqtt.cert_file, mqtt.key_file: a client certificate needs both files")
    if not mqtt.tls and (mqtt.ca_file or mqtt.cert_file or mqtt.tls_insecure):
        problems.append("mqtt.tls: ca_file, cert_file and tls_insecure only apply with tls = true")
    if config.http.preview and not config.http.enabled:
        problems.append("http.preview: the preview is served over HTTP; set http.enabled = true too")
    for key in ("ca_file", "cert_file", "key_file", "password_file"):
        path = getattr(mqtt, key)
        if path and not Path(path).is_file():
            problems.append(f"mqtt.{key}: file {path} not found")
    return problems


def _coerce(value: Any, kind: type, key: str, from_text: bool) -> Any:
    """Check (TOML) or convert (environment, flags) one value to its field's type."""
    if from_text and isinstance(value, str):
        text = value.strip()
        if kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
        else:
            try:
                return kind(text)
            except ValueError:
                pass
        raise ConfigError(f"{key}: {value!r} is not a valid {kind.__name__}")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind:
        raise ConfigError(f"{key}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def _build(cls: type, data: dict[str, Any], prefix: str, from_text: set[str], problems: list[str]):
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in known:
            problems.append(f"{dotted}: unknown key (known: {', '.join(sorted(known))})")
            continue
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            if not isinstance(value, dict):
                problems.append(f"{dotted}: expected a [{dotted}] table")
                continue
            values[key] = _build(kind, value, f"{dotted}.", from_text, problems)
            continue
        if isinstance(kind, types.UnionType):  # "str | None" style optional fields
            kind = next(k for k in typing.get_args(kind) if k is not type(None))
        try:
            values[key] = _coerce(value, kind, dotted, dotted in from_text)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        rule = RULES.get(dotted)
        if rule and not rule[0](values[key]):
            problems.append(f"{dotted}: {values[key]!r} {rule[1]}")
    return cls(**values)


def _nest(flat: dict[str, Any], into: dict[str, Any]) -> None:
    """Merge {'mqtt.host': v} style keys into a nested dict."""
    for dotted, value in flat.items():
        *parents, leaf = dotted.split(".")
        node = into
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[leaf] = value


def environment_overrides(environ: typing.Mapping[str, str]) -> dict[str, str]:
    """FER_EDGE_MQTT__HOST=broker becomes {'mqtt.host': 'broker'}."""
    return {name[len(ENV_PREFIX):].lower().replace("__", "."): value
            for name, value in environ.items() if name.startswith(ENV_PREFIX)}


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                environ: typing.Mapping[str, str] | None = None) -> Config:
    """Read the TOML file (if any), overlay the environment, then ``overrides`` (flags)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found; copy config.example.toml there "
                              "or pass --config PATH") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    text_keys = environment_overrides(os.environ if environ is None else environ)
    _nest(text_keys, data)
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    _nest(flags, data)
    problems: list[str] = []
    config = _build(Config, data, "", set(text_keys), problems)
    if not problems:
        problems = _cross_field_problems(config)
    if problems:
        raise ConfigError(problems)
    return config
