"""Event policy (every / change + heartbeat) and the event payload."""

from __future__ import annotations

import pytest
from fer_edge.classifier import Expression
from fer_edge.events import EventPolicy, make_event


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
