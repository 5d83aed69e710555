"""Face tracks across frames: greedy IoU matching, stable ids, and per-track score smoothing."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np

from .faces import Box, Face

log = logging.getLogger(__name__)


class ScoreSmoother:
    """Exponential moving average of a probability vector, and a top label with hysteresis.

    The top label changes only when another label's smoothed score beats it by more than
    ``margin``: two near-equal scores would otherwise flip the label every few frames.
    """

    def __init__(self, alpha: float = 0.5, margin: float = 0.0):
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"smoothing alpha must be in (0, 1], got {alpha}")
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"hysteresis margin must be in [0, 1), got {margin}")
        self.alpha = alpha
        self.margin = margin
        self.value: np.ndarray | None = None
        self._top: int | None = None

    def update(self, probabilities: np.ndarray) -> np.ndarray:
        """Blend in a new probability vector and return the smoothed one."""
        p = np.asarray(probabilities, dtype=np.float64).ravel()
        blended = p if self.value is None else self.alpha * p + (1.0 - self.alpha) * self.value
        # Renormalize so rounding drift or unnormalized input cannot leak into published scores.
        total = blended.sum()
        self.value = blended / total if total > 0 else blended.copy()
        best = int(np.argmax(self.value))
        if self._top is None or self.value[best] - self.value[self._top] > self.margin:
            self._top = best
        return self.value.copy()

    @property
    def top(self) -> int | None:
        """Index of the current top label (with hysteresis), None before the first update."""
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

    def smooth(self, probabilities: np.ndarray) -> np.ndarray:
        """This track's smoothed probabilities after adding a new classification."""
        return self.smoother.update(probabilities)


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

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 5, smoothing: float = 0.5,
                 hysteresis: float = 0.0):
        # max_missed is the number of consecutive detection runs (not frames) a track may miss;
        # 5 bridges the longest gap measured on fer_woman2.mp4 (3 frames) with room to spare.
        if max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {max_missed}")
        ScoreSmoother(smoothing, hysteresis)  # fail now, not at the first new face
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.smoothing = smoothing
        self.hysteresis = hysteresis
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
                track = Track(next(self._ids), face, ScoreSmoother(self.smoothing, self.hysteresis))
                self.tracks.append(track)
                log.debug("new face track %d at %s", track.id, face.box)
        return list(self.tracks)
