"""``GET /metrics``: the daemon's counters in Prometheus' text format, through prometheus_client.

Three kinds of figure, each kept where it is cheapest:

- per-stage latencies: a ``Histogram`` each sample goes into as the loop times it
  (``observe_stage``, a StageTimes listener);
- events by emotion: a ``Counter`` the event fan-out bumps (``count_event``, a TeeSink listener);
- everything the loop and the publisher already count (frames, drops, faces, camera, MQTT
  delivery): read when Prometheus scrapes, by a custom collector (prometheus_client's way of
  exposing counters kept elsewhere), from a ``counters()`` callable the daemon supplies.

A registry of its own, so nothing else that imports prometheus_client shows up here; the
process collector adds CPU time, memory and open files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..config.preflight import web_extra_message
from ..errors import EdgeError

try:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
    from prometheus_client.process_collector import ProcessCollector
    from prometheus_client.registry import Collector
except ImportError as exc:
    raise EdgeError(web_extra_message(str(exc.name))) from None

__all__ = ["CONTENT_TYPE_LATEST", "DaemonMetrics", "MetricsInfo"]

# Seconds. Stage times run from ~0.1 ms (classifying one face with the fast model) to the 0.5 s
# the loop waits for a frame at most.
STAGE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)

# counters() key -> (metric name without _total, help); every one a running total
COUNTERS = {
    "frames": ("fer_edge_frames", "Frames processed by the loop"),
    "frames_read": ("fer_edge_frames_read", "Frames the source delivered, taken or dropped"),
    "dropped_frames": ("fer_edge_frames_dropped", "Frames replaced by a newer one before the loop took them"),
    "bad_frames": ("fer_edge_frames_bad", "Frames the source delivered unreadable"),
    "events": ("fer_edge_events_sent", "Events handed to the MQTT publisher"),
    "mqtt_acked": ("fer_edge_mqtt_events_acked", "Events the broker acknowledged"),
    "mqtt_dropped": ("fer_edge_mqtt_events_dropped", "Events lost from a full queue, or QoS 0 ones offline"),
    "mqtt_unsent": ("fer_edge_mqtt_events_unsent", "Events not delivered when the publisher stopped"),
    "mqtt_refused": ("fer_edge_mqtt_refused", "Messages the broker refused"),
    "mqtt_stats_dropped": ("fer_edge_mqtt_stats_dropped", "Stats messages that found no connection"),
}
# counters() key -> (metric name, help); values now
GAUGES = {
    "fps": ("fer_edge_fps", "Frames processed per second over the last 5 seconds"),
    "faces": ("fer_edge_faces", "Faces in view in the last processed frame"),
    "camera_up": ("fer_edge_camera_up", "1 while the source delivers frames"),
    "mqtt_connected": ("fer_edge_mqtt_connected", "1 while the broker has accepted the connection"),
    "mqtt_queued": ("fer_edge_mqtt_queued", "Messages waiting for the broker"),
    "uptime_s": ("fer_edge_uptime_seconds", "Seconds since the loop started"),
}


@dataclass(frozen=True)
class MetricsInfo:
    """What the fer_edge_info metric says: labels that identify this daemon."""

    version: str
    device_id: str
    model: str
    detector: str
    source: str


class _LoopCollector(Collector):
    """The loop's and the publisher's own counters, read at scrape time."""

    def __init__(self, counters: Callable[[], dict[str, Any]], info: MetricsInfo) -> None:
        self._counters, self._info = counters, info

    def collect(self) -> Iterator[Metric]:
        values = self._counters()
        for key, (name, text) in COUNTERS.items():
            if values.get(key) is not None:
                yield CounterMetricFamily(name, text, value=float(values[key]))
        for key, (name, text) in GAUGES.items():
            if values.get(key) is not None:  # absent, not 0, when it is not known
                yield GaugeMetricFamily(name, text, value=float(values[key]))
        info = InfoMetricFamily("fer_edge", "The daemon's version, device id, model, detector and source")
        info.add_metric([], vars(self._info))
        yield info


class DaemonMetrics:
    """The /metrics registry: histograms and event counts fed live, the rest read at scrape time."""

    def __init__(self, counters: Callable[[], dict[str, Any]], info: MetricsInfo,
                 labels: tuple[str, ...] = ()) -> None:
        self.registry = CollectorRegistry()
        self.stages = Histogram("fer_edge_stage_seconds", "Time per loop stage (wait, detect, classify, "
                                "publish)", ["stage"], buckets=STAGE_BUCKETS, registry=self.registry)
        self.events = Counter("fer_edge_events", "Events by emotion", ["emotion"], registry=self.registry)
        for label in labels:  # every emotion from the start, at 0, so rates need no missing-series care
            self.events.labels(label)
        self.registry.register(_LoopCollector(counters, info))
        ProcessCollector(registry=self.registry)

    def observe_stage(self, stage: str, seconds: float) -> None:
        """One timed sample of a loop stage (on the loop's thread)."""
        self.stages.labels(stage).observe(seconds)

    def count_event(self, event: dict[str, Any]) -> None:
        """One event handed to the publisher (on the loop's thread)."""
        self.events.labels(event["emotion"]).inc()

    def exposition(self) -> bytes:
        """The text a scrape gets (CONTENT_TYPE_LATEST)."""
        return generate_latest(self.registry)
