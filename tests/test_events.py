"""Event policy (every / change + heartbeat), the event payload and the stage statistics."""

from __future__ import annotations

import pytest
from fer_edge.classifier import Expression
from fer_edge.events import EventPolicy, make_event
from fer_edge.stats import RateMeter, StageTimes


def test_every_mode_publishes_each_frame():
    policy = EventPolicy("every")
    assert [policy.reason(1, "happy", t) for t in (0.0, 0.1, 0.2)] == ["frame"] * 3


def test_change_mode_publishes_new_changes_and_heartbeats():
    policy = EventPolicy("change", heartbeat=10.0)
    got = [policy.reason(1, label, t) for label, t in
           [("happy", 0), ("happy", 1), ("sad", 2), ("sad", 5), ("sad", 12), ("sad", 13)]]
    assert got == ["new", None, "change", None, "heartbeat", None]
    assert policy.reason(2, "sad", 13) == "new"  # tracks are independent


def test_ended_tracks_are_forgotten():
    policy = EventPolicy("change")
    policy.reason(1, "happy", 0)
    policy.forget_all_but([])
    assert policy.reason(1, "happy", 1) == "new"


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError):
        EventPolicy("sometimes")


def test_event_payload_follows_the_contract():
    scores = {"angry": 0.1, "disgust": 0.0, "fear": 0.05, "happy": 0.7, "sad": 0.05,
              "surprise": 0.05, "neutral": 0.05}
    event = make_event(ts=1.23456, device_id="cam", frame=7, face_id=3, box=(1, 2, 3, 4),
                       expression=Expression("happy", 0.7, scores), reason="new")
    assert event == {"ts": 1.235, "device_id": "cam", "frame": 7, "face_id": 3, "box": [1, 2, 3, 4],
                     "emotion": "happy", "confidence": 0.7, "scores": scores, "reason": "new"}


def test_stage_times_percentiles():
    times = StageTimes(window=100)
    for ms in range(1, 101):
        times.add("detect", ms / 1000)
    summary = times.summary()["detect"]
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["p95_ms"] == pytest.approx(95.05)


def test_rate_meter_counts_over_its_window():
    meter = RateMeter(window=2.0)
    for i in range(21):
        meter.tick(now=10 + i * 0.1)
    assert meter.rate(now=12.0) == pytest.approx(10.0)
    assert meter.rate(now=100.0) == 0.0
