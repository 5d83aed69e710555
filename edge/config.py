"""Typed configuration: TOML file, then FER_EDGE_* environment, then command-line flags.

One shape: every table is a frozen dataclass below, and each field's bound sits beside it
(``setting(default, check, rule)``). Every value is checked once, on load: unknown keys, wrong
types, out-of-range values and cross-field rules are reported together, each with its dotted
key, as one ConfigError (exit 78, so systemd does not restart-loop on a bad file). Components
take the validated tables and trust them.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Jetson's JetPack 6 ships Python 3.10
    import tomli as tomllib

from .errors import ConfigError
from .mqtt.checks import client_id_problem, password_file_warning, tls_file_problems, topic_problems
from .schema import (
    between,
    build,
    decode_toml,
    environment_overrides,
    host_names,
    listen_host,
    nest,
    one_of,
    port,
    positive,
    setting,
    topic_prefix,
)
from .secrets import PASSWORD_CREDENTIAL, TOKEN_CREDENTIAL, credential_path, read_password, read_secret

log = logging.getLogger(__name__)

ENV_PREFIX = "FER_EDGE_"
EXAMPLE_CONFIG = Path(__file__).resolve().parent / "config.example.toml"  # shipped in the package


@dataclass(frozen=True)
class SourceConfig:
    """Where frames come from; see fer_edge.sources for the spec forms."""

    spec: str = "0"
    realtime: bool = True  # files only: pace at the file's frame rate
    loop: bool = False  # files only: start over at the end (soak tests, demos)
    width: int = positive(640, "number of pixels")
    height: int = positive(480, "number of pixels")
    fps: int = setting(30, lambda v: 0 < v <= 240, "must be between 1 and 240")
    open_timeout: float = setting(10.0, lambda v: v >= 0, "must be zero or more seconds")
    # stop after this many frames; 0 runs until the source ends
    max_frames: int = setting(0, lambda v: v >= 0, "must be zero (no limit) or more")


@dataclass(frozen=True)
class ModelConfig:
    """The int8 TFLite classifier; an empty path means the bundled model."""

    path: str = ""
    labels: str = ""
    threads: int = between(1, 1, 64)


@dataclass(frozen=True)
class DetectorConfig:
    """Face detection: YuNet (default) or Haar, and what both share.

    The default and every setting were measured on real face media; docs/benchmarks.md
    ("Face detectors") has the tables and their commands. YuNet at 320 px found a face in
    every frame of both test clips and 6 of 6 Solvay faces, in less time per frame than Haar.
    """

    type: str = one_of("yunet", "yunet", "haar")
    detect_every: int = between(3, 1, 100)  # detect every N frames, tracking in between
    # Faces smaller than this (source pixels) are ignored: a 48x48 crop of less is mostly upsampling.
    min_face: int = setting(32, lambda v: 8 <= v <= 4096, "must be between 8 and 4096 pixels")
    # Only the largest N faces of a frame are classified (0: all): background crowds cost nothing.
    max_faces: int = between(10, 0, 1000)
    # Width of the copy the detector scans (0: the full frame). YuNet finds faces from ~10 px of
    # it, Haar from its 24 px window: 320 px sees faces from 20 (YuNet) / 48 (Haar) px of 640.
    working_width: int = setting(320, lambda v: v == 0 or 80 <= v <= 8192,
                                 "must be 0 (full frame) or between 80 and 8192")
    # YuNet
    score_threshold: float = setting(0.6, lambda v: 0 < v < 1, "must be between 0 and 1")
    nms_threshold: float = setting(0.3, lambda v: 0 < v < 1, "must be between 0 and 1")
    # Haar
    scale_factor: float = setting(1.2, lambda v: 1.0 < v <= 2.0, "must be above 1.0 and at most 2.0")
    min_neighbors: int = between(5, 0, 50)
    equalize: bool = True  # histogram-equalise before the cascade (rescues dark clips)
    cascade: str = ""  # empty: the cascade shipped with fer-edge


@dataclass(frozen=True)
class TrackingConfig:
    """Face tracks across frames and the smoothing of their scores."""

    # weight of the newest scores in the moving average; 1 = none
    smoothing: float = setting(0.3, lambda v: 0 < v <= 1, "must be above 0 and at most 1")
    # a new emotion must beat the current one by this much
    hysteresis: float = setting(0.1, lambda v: 0 <= v < 1, "must be at least 0 and below 1")
    max_missed: int = setting(5, lambda v: v >= 0, "must be zero or more")  # detections a track may miss
    iou_threshold: float = setting(0.3, lambda v: 0 < v < 1, "must be between 0 and 1")


@dataclass(frozen=True)
class MqttConfig:
    """Broker connection; the password only ever comes from a file."""

    host: str = setting("localhost", bool, "must not be empty")
    port: int = port(1883)
    prefix: str = topic_prefix("fer-edge")
    # empty: this machine's host name. Must be unique per board: it names the topics.
    device_id: str = setting("", lambda v: not set(v) & set("+#/"), "must not contain +, # or /")
    # empty: fer-edge-<device_id>-<8 hex digits of this board's /etc/machine-id>
    client_id: str = setting("", lambda v: client_id_problem(v) is None,
                             "must be UTF-8 of at most 65535 bytes without control characters")
    protocol: str = one_of("5", "5", "3.1.1")  # 3.1.1 for brokers older than MQTT 5 (2019)
    qos: int = setting(1, lambda v: v in (0, 1, 2), "must be 0, 1 or 2")
    keepalive: int = between(30, 5, 3600, " seconds")
    # events kept while the broker is away; beyond, the oldest go
    queue_size: int = between(1000, 1, 1_000_000)
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

    mode: str = one_of("change", "every", "change")
    heartbeat: float = positive(30.0, "number of seconds")  # between repeats of an unchanged emotion
    stats_interval: float = positive(10.0, "number of seconds")


@dataclass(frozen=True)
class HttpConfig:
    """The local HTTP server: upload page, /predict, /healthz and the /preview.mjpg stream."""

    enabled: bool = False
    # loopback by default; beyond it, set token_file (the page has no other login)
    host: str = listen_host("127.0.0.1")
    port: int = port(8080)
    max_upload_bytes: int = between(5_000_000, 1024, 100_000_000)
    preview: bool = False  # serve the annotated camera view at /preview.mjpg
    # Host names the page answers besides loopback's and http.host (DNS rebinding gets 403)
    allowed_hosts: tuple[str, ...] = host_names()
    token_file: str = ""  # a bearer token to require; empty: $CREDENTIALS_DIRECTORY/http_token if it exists
    max_connections: int = between(16, 4, 1000)  # open connections; more wait to be accepted
    client_timeout: int = between(10, 1, 300, " seconds")  # a silent client is cut off after this
    threads: int = between(3, 2, 16)  # requests served at once; preview viewers may hold all but one

    def listen_address(self) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
        """The family and address ``run`` binds, as getaddrinfo gives them; ConfigError if none."""
        try:
            family, _, _, _, address = socket.getaddrinfo(self.host, self.port, socket.AF_UNSPEC,
                                                          socket.SOCK_STREAM, 0, socket.AI_PASSIVE)[0]
        except socket.gaierror as exc:
            raise ConfigError(f"http.host: {self.host!r} does not resolve to an address to listen on "
                              f"({exc.strerror}); use an IP address such as 127.0.0.1 or ::1") from None
        return family, address

    def check_listen(self) -> None:
        """What ``run`` will do to listen, short of taking the port: resolve, then bind port 0 there."""
        family, address = self.listen_address()
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((address[0], 0, *address[2:]))
            except OSError as exc:
                raise ConfigError(f"http.host: cannot listen on {self.host} ({exc.strerror}); use an address "
                                  "of this machine, 127.0.0.1, ::1, 0.0.0.0 or ::") from None

    def token(self) -> str | None:
        """The bearer token to require, from token_file or systemd's credential; None: no token."""
        token = read_secret("http.token_file", self.token_file, TOKEN_CREDENTIAL)
        if token is not None and len(token) < 16:
            raise ConfigError(f"http.token_file: the token has {len(token)} characters; use at least 16, "
                              "e.g. from `openssl rand -hex 32`")
        return token


@dataclass(frozen=True)
class ImagesConfig:
    """Photos (POST /predict, fer-edge predict, annotate of a photo): what is decoded at all."""

    # Read from the header first: a larger picture is refused before any pixel is decoded. A
    # decode at the cap costs 80 MB (baseline JPEG, PNG) to 240 MB (GIF) while it runs.
    max_pixels: int = between(40_000_000, 10_000, 1 << 30)


@dataclass(frozen=True)
class HomeAssistantConfig:
    """Home Assistant MQTT discovery of the daemon's sensors."""

    enabled: bool = False
    discovery_prefix: str = topic_prefix("homeassistant")
    # empty: the device id, with characters discovery refuses replaced by _
    node_id: str = setting("", lambda v: re.fullmatch(r"[A-Za-z0-9_-]*", v) is not None,
                           "may only hold letters, digits, _ and -")
    birth_topic: str = setting("homeassistant/status", lambda v: bool(v) and not set(v) & set("+#"),
                               "must be a non-empty topic without + or #")  # Home Assistant's default


@dataclass(frozen=True)
class Config:
    """The whole configuration of one daemon."""

    source: SourceConfig = field(default_factory=SourceConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    images: ImagesConfig = field(default_factory=ImagesConfig)
    homeassistant: HomeAssistantConfig = field(default_factory=HomeAssistantConfig)
    log_level: str = one_of("info", "debug", "info", "warning", "error")

    @property
    def device_id(self) -> str:
        """The MQTT device id: configured, or the host name made topic-safe."""
        return self.mqtt.device_id or re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())

    def mqtt_password_file(self) -> Path | None:
        """The password file in use: mqtt.password_file, or systemd's credential; None without one."""
        configured = self.mqtt.password_file
        return Path(configured) if configured else credential_path(PASSWORD_CREDENTIAL)

    def mqtt_password(self) -> str | None:
        """The broker password from mqtt.password_file or systemd's credentials directory."""
        path = self.mqtt_password_file()
        if path is None:
            return None
        if warning := password_file_warning(path):
            log.warning("%s", warning)
        return read_password(path)


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
    if config.http.token_file and not Path(config.http.token_file).is_file():
        problems.append(f"http.token_file: file {config.http.token_file} not found")
    missing = False
    for key in ("ca_file", "cert_file", "key_file", "password_file"):
        path = getattr(mqtt, key)
        if path and not Path(path).is_file():
            problems.append(f"mqtt.{key}: file {path} not found")
            missing = True
    if mqtt.tls and not missing:
        problems += tls_file_problems(mqtt.ca_file, mqtt.cert_file, mqtt.key_file)
    discovery = config.homeassistant.discovery_prefix if config.homeassistant.enabled else None
    return problems + topic_problems(mqtt.prefix, config.device_id, discovery)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                environ: typing.Mapping[str, str] | None = None) -> Config:
    """Read the TOML file (if any), overlay the environment, then ``overrides`` (flags)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as handle:
                data = tomllib.loads(decode_toml(handle.read(), path))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found; check the path, or start from the "
                              f"example: cp {EXAMPLE_CONFIG} {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    text_keys = environment_overrides(os.environ if environ is None else environ, ENV_PREFIX)
    nest(text_keys, data)
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    nest(flags, data)
    problems: list[str] = []
    config = build(Config, data, "", set(text_keys), problems)
    if not problems:
        problems = _cross_field_problems(config)
    if problems:
        raise ConfigError(problems)
    return config
