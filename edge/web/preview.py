"""The preview stream's feed: the loop's newest frame and faces, drawn and JPEG-encoded for viewers.

``fer-edge run --preview`` updates a PreviewFeed from the loop's on_tick; each
``/preview.mjpg`` viewer (fer_edge.web.app) waits on it for frames newer than the last it sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2

from ..classifier import Expression
from ..overlay import Box, TrackLike, draw_annotations

if TYPE_CHECKING:
    from ..sources import Frame


@dataclass(frozen=True)
class TrackSnapshot:
    """A track's id and box at one frame (a live Track moves on with the next frame)."""

    id: int
    box: Box


def snapshot(results: Iterable[tuple[TrackLike, Expression]]) -> tuple[tuple[TrackSnapshot, Expression], ...]:
    """Freeze results so another thread can draw them after the loop has moved on."""
    return tuple((TrackSnapshot(track.id, track.box), expression) for track, expression in results)


class PreviewFeed:
    """The newest frame and its faces, handed from the loop to ``/preview.mjpg`` viewers.

    ``update`` runs on the loop thread and only keeps references; viewers draw and
    JPEG-encode on their own threads, and nothing is encoded while nobody watches.
    """

    def __init__(self, max_fps: float = 10.0, quality: int = 80):
        self.interval = 1.0 / max_fps  # a Pi's CPU belongs to the loop, not to a preview
        self.quality = quality
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._faces: tuple[tuple[TrackSnapshot, Expression], ...] = ()
        self._seq = 0
        self._last_update = 0.0
        self._encoded: tuple[int, bytes] = (0, b"")

    def update(self, frame: Frame | None, results: Iterable[tuple[TrackLike, Expression]]) -> None:
        """Offer the loop's latest frame and results; cheap, and skipped above max_fps."""
        now = time.monotonic()
        if frame is None or frame is self._frame or now - self._last_update < self.interval:
            return
        faces = snapshot(results)
        with self._cond:
            self._frame, self._faces, self._last_update = frame, faces, now
            self._seq += 1
            self._cond.notify_all()

    def wait_jpeg(self, after: int = 0, timeout: float = 1.0) -> tuple[int, bytes] | None:
        """The annotated JPEG of the first frame newer than ``after``; None after timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._seq > after, timeout):
                return None
            seq, frame, faces = self._seq, self._frame, self._faces
            if self._encoded[0] == seq:  # another viewer already encoded this one
                return self._encoded
            assert frame is not None  # _seq > 0 only once a frame is set
        ok, jpeg = cv2.imencode(".jpg", draw_annotations(frame.image, faces),
                                [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise RuntimeError("OpenCV could not JPEG-encode a preview frame")
        with self._cond:
            self._encoded = (seq, jpeg.tobytes())
            return self._encoded
