"""The dashboard's parts, built from the daemon's: event hub, live state, metrics, and the routes over them.

The daemon (the composition root) makes one ``DashboardParts`` when ``http.enabled``: it adds
the hub and the metrics as listeners of the loop's event fan-out (fer_edge.fanout.TeeSink) and
of its stage timer, hands ``dashboard`` to the server, and calls ``tick`` from its on_tick.
"""

from __future__ import annotations

import time
from importlib import metadata
from typing import TYPE_CHECKING, Any

from .dashboard import Dashboard
from .events import EventHub
from .live import LiveState
from .metrics import DaemonMetrics, MetricsInfo

if TYPE_CHECKING:
    from ..classifier import TFLiteExpressionClassifier
    from ..config import Config
    from ..fanout import TeeSink
    from ..health import Health
    from ..mqtt.publisher import MqttPublisher
    from ..pipeline import Pipeline


def installed_version() -> str:
    """fer-edge's version, or "unknown" in a bare source checkout."""
    try:
        return metadata.version("fer-edge")
    except metadata.PackageNotFoundError:
        return "unknown"


class DashboardParts:
    """Everything behind /events, /status, /history and /metrics, fed from the loop's thread."""

    def __init__(self, config: Config, *, pipeline: Pipeline, publisher: MqttPublisher, sink: TeeSink,
                 classifier: TFLiteExpressionClassifier) -> None:
        self.config, self.pipeline, self.publisher = config, pipeline, publisher
        self.classifier, self.version = classifier, installed_version()
        self.health: Health | None = None  # the loop's state as of its last tick; None before the first
        self.hub = EventHub()
        self.live = LiveState(on_faces=lambda snapshot: self.hub.publish_live("faces", snapshot))
        self.metrics = DaemonMetrics(self.counters, MetricsInfo(
            version=self.version, device_id=config.device_id, model=classifier.model_path.name,
            detector=config.detector.type, source=pipeline.grabber.source.description),
            labels=tuple(classifier.labels))
        sink.add_listener(self.hub.publish)
        sink.add_listener(self.metrics.count_event)
        pipeline.times.add_listener(self.metrics.observe_stage)
        self.dashboard = Dashboard(self.hub, self.live, self.metrics, self.about)

    def tick(self, health: Health) -> None:
        """From the daemon's on_tick (the loop's thread): its health snapshot, the newest faces, and
        stats once a second."""
        self.health = health
        pipeline = self.pipeline
        frame = pipeline.last_frame.index if pipeline.last_frame is not None else None
        self.live.update(frame, pipeline.last_results, pipeline.stats)

    def about(self) -> dict[str, Any]:
        """What runs: version, device id, source and its nominal rate, model, detector, preview."""
        source = self.pipeline.grabber.source
        return {"version": self.version, "device_id": self.config.device_id,
                "source": source.description, "source_fps": source.fps,
                "model": self.classifier.model_path.name, "labels": list(self.classifier.labels),
                "detector": self.config.detector.type, "detect_every": self.config.detector.detect_every,
                "preview": self.config.http.preview, "publish_mode": self.config.publish.mode}

    def counters(self) -> dict[str, Any]:
        """The loop's and the publisher's counters now (read at scrape time, from a request thread).

        Camera, faces and fps come from the loop's last health snapshot (fer_edge.health), the one
        stats and /healthz report, so a stale frame's faces are not counted as in view."""
        pipeline, grabber = self.pipeline, self.pipeline.grabber
        health = self.health.fields() if self.health is not None else {"frames": pipeline.processed}
        return {**health, "frames_read": grabber.frames_read, "dropped_frames": grabber.dropped,
                "bad_frames": grabber.bad_frames, "events": pipeline.events_sent,
                "uptime_s": round(time.monotonic() - pipeline.started, 1), **self.publisher.counters(),
                "mqtt_unsent": self.publisher.delivery.events_unsent}
