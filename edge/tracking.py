"""Face tracks across frames: greedy IoU matching, stable ids, and per-track score smoothing."""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass

import numpy as np

from .faces import Box, Face

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Smoothing:
    """How a track's scores are smoothed over time and when its reported label may change.

    ``time_constant``: seconds of the exponential moving average (0: none), so a new frame's
    weight is 1 - exp(-dt / time_constant) whatever the frame rate. A label takes over from the
    reported one only when its smoothed score has led by more than ``margin`` for ``dwell``
    seconds without a break. (No minimum confidence: a leader by a margin is above any minimum
    the reported label still meets, and holding a label the model has stopped backing, until
    a challenger reaches some minimum, reports what the scores no longer say.)
    """

    time_constant: float = 0.0
    margin: float = 0.0
    dwell: float = 0.0

    def __post_init__(self) -> None:
        for name in ("time_constant", "dwell"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"smoothing {name} must be zero or more seconds, got {getattr(self, name)}")
        if not 0.0 <= self.margin < 1.0:
            raise ValueError(f"smoothing margin must be in [0, 1), got {self.margin}")


class ScoreSmoother:
    """A probability vector averaged over time, and the label reported for it.

    The reported label (``top``) is the first update's highest score; after that it changes only
    as ``Smoothing`` allows, so two near-equal scores, or a short-lived flicker, do not flip it.
    """

    def __init__(self, settings: Smoothing = Smoothing()):
        self.settings = settings
        self.value: np.ndarray | None = None
        self._top: int | None = None
        self._last: float = 0.0  # time of the last update
        self._challenger: tuple[int, float] | None = None  # (label, since when it qualifies)

    def update(self, probabilities: np.ndarray, now: float) -> np.ndarray:
        """Blend in the probabilities seen at ``now`` (seconds, any monotonic clock); the smoothed vector."""
        p = np.asarray(probabilities, dtype=np.float64).ravel()
        tau = self.settings.time_constant
        if self.value is None or tau == 0:
            blended = p
        else:
            weight = 1.0 - math.exp(-max(now - self._last, 0.0) / tau)
            blended = weight * p + (1.0 - weight) * self.value
        self._last = now
        # Renormalize so rounding drift or unnormalized input cannot leak into published scores.
        total = blended.sum()
        self.value = blended / total if total > 0 else blended.copy()
        self._choose_top(now)
        return self.value.copy()

    def _choose_top(self, now: float) -> None:
        assert self.value is not None
        best = int(np.argmax(self.value))
        if self._top is None:
            self._top = best
            return
        settings = self.settings
        qualifies = best != self._top and self.value[best] - self.value[self._top] > settings.margin
        if not qualifies:
            self._challenger = None
            return
        if self._challenger is None or self._challenger[0] != best:
            self._challenger = (best, now)
        if now - self._challenger[1] >= settings.dwell:
            self._top, self._challenger = best, None

    @property
    def top(self) -> int | None:
        """Index of the reported label, None before the first update."""
        return self._top


@dataclass(eq=False)
class Track:
    """A face followed across frames: a stable id, its last box, and its smoothed scores."""

    id: int
    face: Face
    smoother: ScoreSmoother
    missed: int = 0  # consecutive detection runs that did not see this face

    @property
    def box(self) -> Box:
        """The last detected box, in source-frame pixels."""
        return self.face.box

    def smooth(self, probabilities: np.ndarray, now: float) -> np.ndarray:
        """This track's smoothed probabilities after adding a classification made at ``now`` (s)."""
        return self.smoother.update(probabilities, now)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


class FaceTracker:
    """Greedy IoU matching of detections to tracks, giving faces ids that stay put."""

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 5, smoothing: Smoothing = Smoothing()):
        # max_missed is the number of consecutive detection runs (not frames) a track may miss;
        # 5 bridges the longest gap measured on fer_woman2.mp4 (3 frames) with room to spare.
        if max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {max_missed}")
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.smoothing = smoothing
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)

    def reset(self) -> None:
        """End every track (the frame size changed); new faces get new ids."""
        self.tracks = []

    def update(self, faces: list[Face] | None) -> list[Track]:
        """Match this frame's faces (None: detection skipped) and return the live tracks."""
        if faces is None:
            # No detection ran: keep the last boxes; a skipped frame is not a miss.
            return list(self.tracks)
        pairs = sorted(((iou(t.box, f.box), ti, fi) for ti, t in enumerate(self.tracks)
                        for fi, f in enumerate(faces)), reverse=True)
        used_tracks: set[int] = set()
        used_faces: set[int] = set()
        for overlap, ti, fi in pairs:
            if overlap < self.iou_threshold:
                break
            if ti in used_tracks or fi in used_faces:
                continue
            track = self.tracks[ti]
            track.face, track.missed = faces[fi], 0
            used_tracks.add(ti)
            used_faces.add(fi)
        for ti, track in enumerate(self.tracks):
            if ti not in used_tracks:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for fi, face in enumerate(faces):
            if fi not in used_faces:
                track = Track(next(self._ids), face, ScoreSmoother(self.smoothing))
                self.tracks.append(track)
                log.debug("new face track %d at %s", track.id, face.box)
        return list(self.tracks)
