"""What every face detector shares: ``Face``, the ``FaceDetector`` protocol, order and limits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h in source-frame pixels


@dataclass(frozen=True)
class Face:
    """A detected face: a square (x, y, w, h) box in source-frame pixels, placed like a FER2013 face."""

    box: Box


class FaceDetector(Protocol):
    """Finds faces in a frame (HaarFaceDetector, YuNetFaceDetector)."""

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in a HxW grayscale or HxWx3 BGR uint8 image, largest first, boxes in its pixels."""
        ...


def clip_box(box: Box, width: int, height: int) -> Box:
    """The part of a box inside a width x height frame (may be empty)."""
    x, y, w, h = box
    x0, y0 = min(max(x, 0), width), min(max(y, 0), height)
    x1, y1 = min(max(x + w, 0), width), min(max(y + h, 0), height)
    return x0, y0, x1 - x0, y1 - y0


def select(boxes: Iterable[Box], width: int, height: int, min_face: int, max_faces: int) -> list[Face]:
    """Boxes clipped to the frame, at least ``min_face`` px on each side, the ``max_faces``
    largest (0: all), largest first and ties by position, so the order is stable run to run."""
    clipped = (clip_box(box, width, height) for box in boxes)
    kept = sorted((b for b in clipped if b[2] >= min_face and b[3] >= min_face),
                  key=lambda b: (-b[2] * b[3], b[1], b[0]))
    return [Face(box) for box in (kept[:max_faces] if max_faces else kept)]


def check_image(image: np.ndarray) -> None:
    """ValueError unless ``image`` is a HxW or HxWx3 uint8 array."""
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"expected a HxW or HxWx3 uint8 image, got shape {image.shape} {image.dtype}")
