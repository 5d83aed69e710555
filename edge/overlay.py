"""Drawing the results on a frame: each face's box, track id, emotion and confidence.

Used by ``fer-edge annotate`` (an annotated video) and the ``/preview.mjpg`` stream.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Protocol

import cv2
import numpy as np

from .classifier import Expression
from .faces import Box

# BGR, chosen to stay apart from one another and from skin tones.
EMOTION_COLOURS: dict[str, tuple[int, int, int]] = {
    "angry": (40, 40, 220),
    "disgust": (40, 150, 40),
    "fear": (170, 60, 170),
    "happy": (0, 210, 255),
    "sad": (200, 110, 20),
    "surprise": (0, 140, 255),
    "neutral": (190, 190, 190),
}


class TrackLike(Protocol):
    """What drawing needs from a face track: its id and its box."""

    @property
    def id(self) -> int: ...

    @property
    def box(self) -> Box: ...




def colour_for(label: str) -> tuple[int, int, int]:
    """The BGR colour of an emotion; labels outside FER2013's get a stable colour of their own."""
    if label in EMOTION_COLOURS:
        return EMOTION_COLOURS[label]
    seed = zlib.crc32(label.encode())
    return 80 + seed % 160, 80 + (seed >> 8) % 160, 80 + (seed >> 16) % 160


def draw_annotations(image: np.ndarray, results: Iterable[tuple[TrackLike, Expression]]) -> np.ndarray:
    """A BGR copy of a BGR or grayscale frame with each face's box, id, emotion and confidence."""
    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    height, width = canvas.shape[:2]
    # Sized from the frame, so a 320x240 Pi preview and a 1080p clip are both readable.
    scale = max(0.4, min(width, height) / 720)
    thickness = max(1, round(min(width, height) / 360))
    for track, expression in results:
        x, y, w, h = (int(v) for v in track.box)
        colour = colour_for(expression.label)
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thickness + 1)
        text = f"#{track.id} {expression.label} {expression.confidence:.0%}"
        (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        pad = max(2, thickness * 2)
        top = y - th - baseline - 2 * pad
        if top < 0:  # no room above the box: put the label just inside its top edge
            top = y
        left = min(max(x, 0), max(0, width - tw - 2 * pad))
        cv2.rectangle(canvas, (left, top), (left + tw + 2 * pad, top + th + baseline + 2 * pad),
                      colour, cv2.FILLED)
        # Dark text on light fills (happy, neutral), white on dark ones.
        luma = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]
        ink = (0, 0, 0) if luma > 140 else (255, 255, 255)
        cv2.putText(canvas, text, (left + pad, top + pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, ink,
                    thickness, cv2.LINE_AA)
    return canvas
