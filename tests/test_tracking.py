"""fer_edge.tracking: track ids that follow faces, and scores smoothed over time with a steady label."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fer_edge.faces import Face
from fer_edge.tracking import FaceTracker, ScoreSmoother, Smoothing


def test_moving_face_keeps_its_id() -> None:
    tracker = FaceTracker()
    first = tracker.update([Face((100, 100, 80, 80))])
    moved = tracker.update([Face((106, 103, 82, 80))])
    assert [t.id for t in first] == [t.id for t in moved] == [1]
    assert moved[0].box == (106, 103, 82, 80)


def test_new_face_gets_a_new_id_and_ids_are_never_reused() -> None:
    tracker = FaceTracker(max_missed=1)
    a, b = Face((0, 0, 50, 50)), Face((300, 0, 50, 50))
    tracker.update([a])
    assert sorted(t.id for t in tracker.update([a, b])) == [1, 2]
    tracker.update([b])
    assert [t.id for t in tracker.update([b])] == [2]  # a missed twice: dropped
    assert sorted(t.id for t in tracker.update([a, b])) == [2, 3]


def test_vanished_face_is_dropped_after_max_missed() -> None:
    tracker = FaceTracker(max_missed=2)
    tracker.update([Face((10, 10, 40, 40))])
    assert [t.missed for t in tracker.update([])] == [1]
    assert [t.missed for t in tracker.update([])] == [2]
    assert tracker.update([]) == []


def test_max_missed_zero_ends_a_track_at_its_first_miss() -> None:
    tracker = FaceTracker(max_missed=0)
    assert [t.id for t in tracker.update([Face((10, 10, 40, 40))])] == [1]
    assert [t.id for t in tracker.update([Face((12, 10, 40, 40))])] == [1]
    assert tracker.update([]) == []


def test_greedy_matching_gives_each_detection_one_track() -> None:
    tracker = FaceTracker()
    tracker.update([Face((0, 0, 100, 100)), Face((60, 0, 100, 100))])
    tracks = tracker.update([Face((58, 0, 100, 100)), Face((2, 0, 100, 100))])
    assert {t.id: t.box for t in tracks} == {1: (2, 0, 100, 100), 2: (58, 0, 100, 100)}


def test_skipped_detection_keeps_last_boxes_without_counting_a_miss() -> None:
    tracker = FaceTracker(max_missed=0)
    tracker.update([Face((10, 10, 40, 40))])
    for _ in range(5):  # detect_every=6: five frames with no detection run
        tracks = tracker.update(None)
        assert [(t.id, t.box, t.missed) for t in tracks] == [(1, (10, 10, 40, 40), 0)]
    assert [t.box for t in tracker.update([Face((14, 10, 40, 40))])] == [(14, 10, 40, 40)]


def test_smoother_output_sums_to_one_and_converges() -> None:
    smoother = ScoreSmoother(Smoothing(time_constant=0.1))
    smoother.update(np.array([1.0, 0.0, 0.0]), now=0.0)
    target = np.array([0.1, 0.2, 0.7])
    for frame in range(1, 31):
        out = smoother.update(target, now=frame / 30)
        assert out.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(out, target, atol=1e-4)
    assert smoother.top == 2


def test_no_time_constant_passes_through() -> None:
    smoother = ScoreSmoother(Smoothing(time_constant=0.0))
    for now, p in enumerate(([0.2, 0.8], [0.9, 0.1])):
        np.testing.assert_allclose(smoother.update(np.array(p), float(now)), p)


def test_track_smooth_blends_with_its_history_over_time() -> None:
    track = FaceTracker(smoothing=Smoothing(time_constant=1.0)).update([Face((0, 0, 50, 50))])[0]
    track.smooth(np.array([1.0, 0.0]), now=10.0)
    weight = 1 - math.exp(-0.5)  # half a time constant later
    np.testing.assert_allclose(track.smooth(np.array([0.0, 1.0]), now=10.5), [1 - weight, weight])


@pytest.mark.parametrize("fps", [5, 30])
def test_smoothing_is_the_same_at_any_frame_rate(fps: int) -> None:
    """A step from one label to another, seen at 5 and at 30 fps: after one second the smoothed
    score is the same (1 - e^-1 with a one-second time constant)."""
    smoother = ScoreSmoother(Smoothing(time_constant=1.0))
    smoother.update(np.array([1.0, 0.0]), now=0.0)
    for frame in range(1, fps + 1):
        out = smoother.update(np.array([0.0, 1.0]), now=frame / fps)
    assert out[1] == pytest.approx(1 - math.exp(-1), abs=1e-9)


@pytest.mark.parametrize("setting", [{"time_constant": -1}, {"dwell": -0.5}, {"margin": 1.0},
                                     {"margin": -0.1}])
def test_bad_smoothing_is_rejected(setting: dict) -> None:
    with pytest.raises(ValueError, match="smoothing"):
        Smoothing(**setting)


def test_hysteresis_keeps_the_label_until_another_clearly_wins():
    smoother = ScoreSmoother(Smoothing(margin=0.1))
    smoother.update(np.array([0.6, 0.4]), 0.0)
    assert smoother.top == 0
    smoother.update(np.array([0.46, 0.54]), 0.1)  # ahead by 0.08: not enough
    assert smoother.top == 0
    smoother.update(np.array([0.40, 0.60]), 0.2)  # ahead by 0.2
    assert smoother.top == 1


def test_a_label_the_scores_no_longer_back_gives_way_to_a_clear_leader():
    """Happy at 0.10 while neutral leads with 0.36: the reported label follows the leader, though
    no label is very sure (a user saw "happy 10%" beside bars of 36% on the dashboard)."""
    smoother = ScoreSmoother(Smoothing(margin=0.1, dwell=0.5))
    smoother.update(np.array([0.9, 0.0, 0.1, 0.0]), 0.0)
    for now in (0.1, 0.4, 0.7):
        smoother.update(np.array([0.10, 0.25, 0.29, 0.36]), now)
    assert smoother.top == 3


def test_a_new_label_must_lead_for_the_dwell_time_without_a_break():
    smoother = ScoreSmoother(Smoothing(dwell=1.0))
    happy, fear = np.array([0.7, 0.3]), np.array([0.3, 0.7])
    smoother.update(happy, 0.0)
    for now in (0.2, 0.6, 1.0):  # fear leads for 0.8 s, then happy is back: a flicker
        smoother.update(fear, now)
    smoother.update(happy, 1.1)
    assert smoother.top == 0
    for now in (1.2, 1.7, 2.1):  # fear again, from 1.2 s: not yet a second
        smoother.update(fear, now)
        assert smoother.top == 0
    smoother.update(fear, 2.2)  # a full second ahead
    assert smoother.top == 1
