"""Pipeline.process with a scripted detector: which faces are classified and which events go out."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from fer_edge.classifier import TFLiteExpressionClassifier
from fer_edge.events import EventPolicy
from fer_edge.faces import Face
from fer_edge.pipeline import Pipeline
from fer_edge.sources import Frame
from fer_edge.tracking import FaceTracker


class ScriptedDetector:
    """Returns the given face lists in turn, one per detection run."""

    def __init__(self, *runs: list[Face]):
        self.runs = list(runs)
        self.calls = 0

    def detect(self, gray: np.ndarray) -> list[Face]:
        self.calls += 1
        return self.runs.pop(0)


def make_pipeline(detector: ScriptedDetector, detect_every: int = 1, mode: str = "every") -> Pipeline:
    return Pipeline(device_id="unit", grabber=None, detector=detector,
                    tracker=FaceTracker(max_missed=2), classifier=TFLiteExpressionClassifier(),
                    publisher=None, policy=EventPolicy(mode, heartbeat=60), detect_every=detect_every)


def frame(index: int) -> Frame:
    rng = np.random.default_rng(index)
    return Frame(index, 100.0 + index, rng.integers(0, 255, (240, 320), dtype=np.uint8))


FACE = Face((100, 60, 80, 80))


def test_a_face_missed_by_detection_is_not_classified_but_keeps_its_track():
    pipeline = make_pipeline(ScriptedDetector([FACE], [], [FACE]))
    first, missed, back = (pipeline.process(frame(i)) for i in range(3))
    assert [e["face_id"] for e in first] == [1] and missed == [] and pipeline.faces_in_view == 1
    assert [e["face_id"] for e in back] == [1]  # the same track, not a new face


def test_detection_every_third_frame_carries_the_boxes_between():
    detector = ScriptedDetector([FACE], [FACE])
    pipeline = make_pipeline(detector, detect_every=3)
    events = [pipeline.process(frame(i)) for i in range(4)]
    assert detector.calls == 2  # frames 0 and 3
    assert [len(e) for e in events] == [1, 1, 1, 1]
    assert all(e[0]["box"] == [100, 60, 80, 80] for e in events)


def test_change_mode_sends_the_first_event_only_for_a_steady_face():
    pipeline = make_pipeline(ScriptedDetector(*[[FACE]] * 3), mode="change")
    still = np.full((240, 320), 128, np.uint8)
    events = [pipeline.process(Frame(i, 100.0 + i, still)) for i in range(3)]
    assert [len(e) for e in events] == [1, 0, 0] and events[0][0]["reason"] == "new"
    track, expression = pipeline.last_results[0]
    assert track.id == 1 and abs(sum(expression.scores.values()) - 1) < 1e-6


def test_a_new_frame_size_starts_the_tracks_over_and_detects_at_once():
    """A network camera that comes back at another resolution: no stale box, no crash, new ids."""
    big = Face((500, 300, 120, 120))  # inside 800x600, outside 320x240
    detector = ScriptedDetector([big], [FACE], [FACE])
    pipeline = make_pipeline(detector, detect_every=3)
    rng = np.random.default_rng(1)
    large = Frame(0, 100.0, rng.integers(0, 255, (600, 800), dtype=np.uint8))
    assert [e["face_id"] for e in pipeline.process(large)] == [1]
    events = pipeline.process(frame(1))  # frame 1 of 3 would skip detection, but the size changed
    assert detector.calls == 2 and [e["face_id"] for e in events] == [2]
    assert events[0]["box"] == [100, 60, 80, 80]


class CountingSink:
    """An event sink that keeps what it is given and reports a counter of its own."""

    fatal_error = None

    def __init__(self) -> None:
        self.events: list[dict] = []

    def counters(self) -> dict[str, int]:
        return {"sink_events": len(self.events)}

    def publish_event(self, event: dict) -> None:
        self.events.append(event)

    def publish_stats(self, stats: dict) -> None:
        pass


def test_stats_carry_the_sinks_own_counters():
    grabber = SimpleNamespace(frames_read=1, dropped=0, bad_frames=0, camera_up=True, stale_after=2.0,
                              reopening=False, stuck_call=None, source=SimpleNamespace(description="unit"))
    pipeline = Pipeline(device_id="unit", grabber=grabber,
                        detector=ScriptedDetector([FACE]), tracker=FaceTracker(),
                        classifier=TFLiteExpressionClassifier(), publisher=CountingSink(),
                        policy=EventPolicy("every", heartbeat=60))
    pipeline.publish(pipeline.process(frame(0)))
    assert pipeline.stats()["sink_events"] == 1
    pipeline.publisher = None  # no sink, no delivery fields: the loop does not make up MQTT's
    assert not [key for key in pipeline.stats() if key.startswith(("mqtt_", "sink_"))]
