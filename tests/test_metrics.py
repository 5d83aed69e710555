"""/metrics: what DaemonMetrics exposes, read back with prometheus_client's own parser."""

from __future__ import annotations

from typing import Any

import pytest
from fer_edge.fanout import TeeSink
from fer_edge.stats import StageTimes
from fer_edge.web.metrics import DaemonMetrics, MetricsInfo
from prometheus_client.parser import text_string_to_metric_families

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INFO = MetricsInfo(version="1.2.3", device_id="door-1", model="fer_edge_int8.tflite", detector="yunet",
                   source="camera 0")


def samples(metrics: DaemonMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of one scrape, parsed as Prometheus would."""
    text = metrics.exposition().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_counters_gauges_and_info_come_from_the_loop_at_scrape_time() -> None:
    counters: dict[str, Any] = {"frames": 10, "frames_read": 12, "dropped_frames": 2, "bad_frames": 0,
                                "events": 3, "faces": 1, "camera_up": True, "fps": 14.5, "uptime_s": 2.0,
                                "mqtt_connected": True, "mqtt_acked": 3, "mqtt_dropped": 0, "mqtt_unsent": 0,
                                "mqtt_refused": 0, "mqtt_stats_dropped": 1, "mqtt_queued": 0}
    metrics = DaemonMetrics(lambda: counters, INFO, labels=LABELS)
    first = samples(metrics)
    assert first[("fer_edge_frames_total", ())] == 10
    assert first[("fer_edge_frames_dropped_total", ())] == 2
    assert first[("fer_edge_mqtt_events_acked_total", ())] == 3
    assert first[("fer_edge_camera_up", ())] == 1 and first[("fer_edge_fps", ())] == 14.5
    info = (("detector", "yunet"), ("device_id", "door-1"), ("model", "fer_edge_int8.tflite"),
            ("source", "camera 0"), ("version", "1.2.3"))
    assert first[("fer_edge_info", info)] == 1
    assert all(first[("fer_edge_events_total", (("emotion", label),))] == 0 for label in LABELS)
    assert ("process_resident_memory_bytes", ()) in first
    counters.update(frames=11, camera_up=False, fps=None)  # read again at the next scrape
    second = samples(metrics)
    assert second[("fer_edge_frames_total", ())] == 11 and second[("fer_edge_camera_up", ())] == 0
    assert ("fer_edge_fps", ()) not in second  # unknown is absent, not 0


def test_stage_histograms_and_events_by_emotion_are_fed_by_the_loops_hooks() -> None:
    metrics = DaemonMetrics(dict, INFO, labels=LABELS)
    times = StageTimes()
    times.add_listener(metrics.observe_stage)
    for seconds in (0.0004, 0.003, 0.003, 0.8):
        times.add("detect", seconds)
    tee = TeeSink(_NullSink(), (metrics.count_event,))
    for emotion in ("happy", "happy", "sad"):
        tee.publish_event({"emotion": emotion})
    got = samples(metrics)
    bucket = {le: got[("fer_edge_stage_seconds_bucket", (("le", le), ("stage", "detect")))]
              for le in ("0.0005", "0.005", "0.5", "1.0", "+Inf")}
    assert bucket == {"0.0005": 1, "0.005": 3, "0.5": 3, "1.0": 4, "+Inf": 4}
    assert got[("fer_edge_stage_seconds_sum", (("stage", "detect"),))] == pytest.approx(0.8064)
    assert got[("fer_edge_events_total", (("emotion", "happy"),))] == 2
    assert got[("fer_edge_events_total", (("emotion", "sad"),))] == 1


class _NullSink:
    fatal_error = None

    def counters(self) -> dict[str, Any]:
        return {}

    def publish_event(self, event: dict[str, Any]) -> None:
        pass

    def publish_stats(self, stats: dict[str, Any]) -> None:
        pass
