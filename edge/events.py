"""Emotion events: when a face's emotion is published, and the JSON it is published as."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .classifier import Expression


class EventPolicy:
    """Decides, per track, whether this frame's expression becomes an event.

    ``every``: one event per face per processed frame. ``change``: an event when a track
    first appears or its smoothed emotion changes, and a heartbeat every ``heartbeat``
    seconds while it stays the same, so a subscriber that joins late still learns the state.
    """

    def __init__(self, mode: str = "change", heartbeat: float = 30.0):
        if mode not in ("every", "change"):
            raise ValueError(f"unknown publish mode {mode!r}")
        self.mode = mode
        self.heartbeat = heartbeat
        self._last: dict[int, tuple[str, float]] = {}  # track id -> (label, time sent)

    def reason(self, track_id: int, label: str, now: float) -> str | None:
        """'frame', 'new', 'change' or 'heartbeat' when an event is due, else None."""
        last = self._last.get(track_id)
        if self.mode == "every":
            why = "frame"
        elif last is None:
            why = "new"
        elif last[0] != label:
            why = "change"
        elif now - last[1] >= self.heartbeat:
            why = "heartbeat"
        else:
            return None
        self._last[track_id] = (label, now)
        return why

    def forget_all_but(self, track_ids: Iterable[int]) -> None:
        """Drop the state of tracks that ended."""
        keep = set(track_ids)
        for track_id in [t for t in self._last if t not in keep]:
            del self._last[track_id]


def make_event(*, ts: float, device_id: str, frame: int, face_id: int,
               box: tuple[int, int, int, int], expression: Expression, reason: str) -> dict[str, Any]:
    """The event payload of the MQTT contract (``<prefix>/<device_id>/emotion``)."""
    return {
        "ts": round(ts, 3),
        "device_id": device_id,
        "frame": frame,
        "face_id": face_id,
        "box": [int(v) for v in box],
        "emotion": expression.label,
        "confidence": round(expression.confidence, 4),
        "scores": {label: round(p, 6) for label, p in expression.scores.items()},
        "reason": reason,
    }
