"""The configuration's tables: frozen dataclasses, each field's bound beside it.

Values arrive here checked (fer_edge.config.loader builds the tables and reports every
problem at once); components take these tables and trust them. Nothing here reads a file or
opens a socket: secrets and pre-flight probes live in their own modules.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field

from .rules import (
    HOST,
    HOST_NAMES,
    LISTEN_HOST,
    MQTT_CLIENT_ID,
    NODE_ID,
    PORT,
    TOPIC,
    TOPIC_PREFIX,
    choice,
    number,
    setting,
    without,
)


@dataclass(frozen=True)
class SourceConfig:
    """Where frames come from; see fer_edge.sources.spec for the spec forms."""

    spec: str = "0"
    realtime: bool = True  # files only: pace at the file's frame rate
    loop: bool = False  # files only: start over at the end (soak tests, demos)
    width: int = setting(640, number(gt=0, unit=" pixels"))
    height: int = setting(480, number(gt=0, unit=" pixels"))
    fps: int = setting(30, number(ge=1, le=240))
    open_timeout: float = setting(10.0, number(ge=0, unit=" seconds"))  # at most 60: see checks.py
    # a capture call (read, close) blocked this long is stuck in the driver: the watchdog runs out
    stall_timeout: float = setting(10.0, number(gt=0, le=600, unit=" seconds"))
    max_frames: int = setting(0, number(ge=0, zero="no limit"))  # stop after this many frames


@dataclass(frozen=True)
class ModelConfig:
    """The int8 TFLite classifier; an empty path means the bundled model."""

    path: str = ""
    labels: str = ""
    threads: int = setting(1, number(ge=1, le=64))


@dataclass(frozen=True)
class DetectorConfig:
    """Face detection: YuNet (default) or Haar, and what both share.

    The default and every setting were measured on real face media; docs/benchmarks.md
    ("Face detectors") has the tables and their commands. YuNet at 320 px found a face in
    every frame of both test clips and 6 of 6 Solvay faces, in less time per frame than Haar.
    """

    type: str = setting("yunet", choice("yunet", "haar"))
    detect_every: int = setting(3, number(ge=1, le=100))  # detect every N frames, tracking in between
    # Faces smaller than this (source pixels) are ignored: a 48x48 crop of less is mostly upsampling.
    min_face: int = setting(32, number(ge=8, le=4096, unit=" pixels"))
    # Only the largest N faces of a frame are classified (0: all): background crowds cost nothing.
    max_faces: int = setting(10, number(ge=0, le=1000))
    # Width of the copy the detector scans (0: the full frame). YuNet finds faces from ~10 px of
    # it, Haar from its 24 px window: 320 px sees faces from 20 (YuNet) / 48 (Haar) px of 640.
    working_width: int = setting(320, number(ge=80, le=8192, zero="full frame"))
    # YuNet
    score_threshold: float = setting(0.6, number(gt=0, lt=1))
    nms_threshold: float = setting(0.3, number(gt=0, lt=1))
    # Haar
    scale_factor: float = setting(1.2, number(gt=1.0, le=2.0))
    min_neighbors: int = setting(5, number(ge=0, le=50))
    equalize: bool = True  # histogram-equalise before the cascade (rescues dark clips)
    cascade: str = ""  # empty: the cascade shipped with fer-edge


@dataclass(frozen=True)
class TrackingConfig:
    """Face tracks across frames and the smoothing of their scores."""

    # time constant of each face's moving average of scores, in seconds (0: none)
    smoothing_time: float = setting(1.5, number(ge=0, le=60, unit=" seconds"))
    # a new emotion must beat the current one by this much ...
    hysteresis: float = setting(0.1, number(ge=0, lt=1))
    # ... for this long without a break before the reported emotion changes
    min_dwell: float = setting(0.5, number(ge=0, le=60, unit=" seconds"))
    max_missed: int = setting(5, number(ge=0))  # detections a track may miss
    iou_threshold: float = setting(0.3, number(gt=0, lt=1))


@dataclass(frozen=True)
class MqttConfig:
    """Broker connection; the password only ever comes from a file."""

    host: str = setting("localhost", HOST)
    port: int = setting(1883, PORT)
    prefix: str = setting("fer-edge", TOPIC_PREFIX)
    # empty: this machine's host name. Must be unique per board: it names the topics.
    device_id: str = setting("", without("+#/"))
    # empty: fer-edge-<device_id>-<8 hex digits of this board's /etc/machine-id>
    client_id: str = setting("", MQTT_CLIENT_ID)
    protocol: str = setting("5", choice("5", "3.1.1"))  # 3.1.1 for brokers older than MQTT 5 (2019)
    qos: int = setting(1, choice(0, 1, 2))
    keepalive: int = setting(30, number(ge=5, le=3600, unit=" seconds"))
    # events kept while the broker is away; beyond, the oldest go
    queue_size: int = setting(1000, number(ge=1, le=1_000_000))
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

    mode: str = setting("change", choice("every", "change"))
    # between repeats of an unchanged emotion
    heartbeat: float = setting(30.0, number(gt=0, unit=" seconds"))
    stats_interval: float = setting(10.0, number(gt=0, unit=" seconds"))


@dataclass(frozen=True)
class HttpConfig:
    """The local HTTP server: upload page, /predict, /healthz and the /preview.mjpg stream."""

    enabled: bool = False
    # loopback by default; beyond it, set token_file (the page has no other login)
    host: str = setting("127.0.0.1", LISTEN_HOST)
    port: int = setting(8080, PORT)
    max_upload_bytes: int = setting(5_000_000, number(ge=1024, le=100_000_000))
    preview: bool = False  # serve the annotated camera view at /preview.mjpg
    # Host names the page answers besides loopback's and http.host (DNS rebinding gets 403)
    allowed_hosts: tuple[str, ...] = setting((), HOST_NAMES)
    token_file: str = ""  # a bearer token to require; empty: $CREDENTIALS_DIRECTORY/http_token if it exists
    # open connections; more wait to be accepted
    max_connections: int = setting(16, number(ge=4, le=1000))
    # of them, one address may hold this many (a browser opens up to 6); beyond, 503 and closed
    max_connections_per_client: int = setting(8, number(ge=1, le=1000))
    # a silent client is cut off after this
    client_timeout: int = setting(10, number(ge=1, le=300, unit=" seconds"))
    # requests served at once; streams (preview viewers, /events readers) may hold all but one
    threads: int = setting(5, number(ge=2, le=16))


@dataclass(frozen=True)
class ImagesConfig:
    """Photos (POST /predict, fer-edge predict, annotate of a photo): what is decoded at all."""

    # Read from the header first: a larger picture is refused before any pixel is decoded. A
    # decode at the cap costs 80 MB (baseline JPEG, PNG) to 240 MB (GIF) while it runs.
    max_pixels: int = setting(40_000_000, number(ge=10_000, le=1 << 30))


@dataclass(frozen=True)
class HomeAssistantConfig:
    """Home Assistant MQTT discovery of the daemon's sensors."""

    enabled: bool = False
    discovery_prefix: str = setting("homeassistant", TOPIC_PREFIX)
    # empty: the device id, with characters discovery refuses replaced by _
    node_id: str = setting("", NODE_ID)
    birth_topic: str = setting("homeassistant/status", TOPIC)  # Home Assistant's default


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
    log_level: str = setting("info", choice("debug", "info", "warning", "error"))

    @property
    def device_id(self) -> str:
        """The MQTT device id: configured, or the host name made topic-safe."""
        return self.mqtt.device_id or re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())
