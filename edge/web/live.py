"""What the dashboard shows of the loop: the faces in view, a timeline of the last minutes, the latest stats.

``LiveState.update`` runs on the loop's thread from the daemon's on_tick and only copies small
values: the faces (at most ``faces_hz`` times a second, handed on to ``on_faces``, the /events
readers' live slot), one timeline sample a second, and the stats payload once a second (the
loop computes it, so nothing here reads the loop's objects from another thread). Request
threads read the copies.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol


class ExpressionLike(Protocol):
    """What a face's result carries (fer_edge.classifier.Expression)."""

    @property
    def label(self) -> str: ...

    @property
    def confidence(self) -> float: ...

    @property
    def scores(self) -> dict[str, float]: ...


class TrackLike(Protocol):
    """A face track's id and box (fer_edge.tracking.Track)."""

    @property
    def id(self) -> int: ...

    @property
    def box(self) -> tuple[int, int, int, int]: ...


def face_rows(results: Iterable[tuple[TrackLike, ExpressionLike]]) -> list[dict[str, Any]]:
    """The faces in view as JSON-ready rows, largest first (the stats' dominant face leads)."""
    rows = [{"face_id": track.id, "box": [int(v) for v in track.box], "emotion": expression.label,
             "confidence": round(float(expression.confidence), 4),
             "scores": {label: round(float(p), 4) for label, p in expression.scores.items()}}
            for track, expression in results]
    return sorted(rows, key=lambda row: -row["box"][2] * row["box"][3])


class LiveState:
    """The newest faces, the timeline and the stats snapshot, written by the loop, read by requests."""

    def __init__(self, *, faces_hz: float = 5.0, stats_every: float = 1.0, sample_every: float = 1.0,
                 span: float = 300.0, on_faces: Callable[[dict[str, Any]], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.faces_interval, self.stats_every, self.sample_every = 1.0 / faces_hz, stats_every, sample_every
        self.span = span
        self.on_faces = on_faces
        self._clock = clock
        self._lock = threading.Lock()
        self._timeline: collections.deque[dict[str, Any]] = collections.deque()
        self._faces: dict[str, Any] | None = None
        self._stats: dict[str, Any] | None = None
        self._last_frame = -1
        self._next_faces = self._next_stats = self._next_sample = 0.0

    def update(self, frame: int | None, results: Iterable[tuple[TrackLike, ExpressionLike]],
               stats: Callable[[], dict[str, Any]]) -> None:
        """Take the loop's newest frame index and results; ``stats`` is called at most once a second."""
        now = self._clock()
        if now >= self._next_stats:
            self._next_stats = now + self.stats_every
            self._stats = stats()
        if frame is None or frame == self._last_frame or now < self._next_faces:
            return
        self._last_frame, self._next_faces = frame, now + self.faces_interval
        snapshot: dict[str, Any] = {"ts": round(now, 3), "frame": frame, "faces": face_rows(results)}
        self._faces = snapshot
        if now >= self._next_sample:
            self._next_sample = now + self.sample_every
            kept = ("face_id", "emotion", "confidence")
            faces = [{key: row[key] for key in kept} for row in snapshot["faces"]]
            sample = {"ts": snapshot["ts"], "faces": faces}
            with self._lock:
                self._timeline.append(sample)
                while self._timeline and self._timeline[0]["ts"] < now - self.span:
                    self._timeline.popleft()
        if self.on_faces is not None:
            self.on_faces(snapshot)

    @property
    def faces(self) -> dict[str, Any] | None:
        """The newest faces snapshot: {"ts", "frame", "faces": [...]}; None before the first frame."""
        return self._faces

    @property
    def stats(self) -> dict[str, Any] | None:
        """The stats payload as of the last second; None before the loop's first tick."""
        return self._stats

    def timeline(self) -> list[dict[str, Any]]:
        """One sample a second over the last ``span`` seconds: [{"ts", "faces": [...]}], oldest first."""
        with self._lock:
            return list(self._timeline)
