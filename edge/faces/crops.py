"""The classifier's input: a 48x48 grayscale crop of a face box."""

from __future__ import annotations

import cv2
import numpy as np

from .base import Box, Face, clip_box


def crop_face(gray: np.ndarray, face: Face | Box, size: int = 48, margin: float = 0.0) -> np.ndarray:
    """A size x size uint8 crop of a face (or its box), grown by margin x its side, clipped."""
    box: Box = face.box if isinstance(face, Face) else face
    x, y, w, h = box
    dx, dy = round(w * margin), round(h * margin)
    x, y, w, h = clip_box((x - dx, y - dy, w + 2 * dx, h + 2 * dy), gray.shape[1], gray.shape[0])
    if w == 0 or h == 0:
        raise ValueError(f"face box {box} lies outside the {gray.shape[1]}x{gray.shape[0]} frame")
    region = gray[y:y + h, x:x + w]
    # INTER_AREA averages when shrinking but is nearest-neighbour-like when enlarging.
    interpolation = cv2.INTER_AREA if w >= size and h >= size else cv2.INTER_LINEAR
    return cv2.resize(region, (size, size), interpolation=interpolation)
