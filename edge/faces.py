"""Face detection (OpenCV's Haar cascade) and the face crops the classifier takes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .config import DetectorConfig
from .errors import ModelError

log = logging.getLogger(__name__)

CASCADE_NAME = "haarcascade_frontalface_default.xml"
# The cascade's own detection window; no face smaller than this is found in the image it scans.
CASCADE_WINDOW = 24

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Face:
    """A detected face: (x, y, w, h) in source-frame pixels."""

    box: Box


def default_cascade_path() -> Path:
    """The frontal-face cascade shipped inside opencv-python(-headless) 4.x."""
    cascades = getattr(getattr(cv2, "data", None), "haarcascades", "")
    return Path(cascades) / CASCADE_NAME


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade, run on a downscaled copy of the frame."""

    def __init__(self, settings: DetectorConfig | None = None, cascade_path: Path | str | None = None):
        """``settings`` is the validated [detector] table (fer_edge.config holds the bounds)."""
        self.settings = settings or DetectorConfig()
        path = Path(cascade_path) if cascade_path is not None else default_cascade_path()
        # OpenCV 5 wheels dropped both CascadeClassifier and the XML files.
        remedy = "install 'opencv-python-headless<5' or pass the path of " + CASCADE_NAME
        if not hasattr(cv2, "CascadeClassifier"):
            raise ModelError(f"OpenCV {cv2.__version__} has no CascadeClassifier; {remedy}")
        if not path.is_file() or path.stat().st_size == 0:
            raise ModelError(f"Haar cascade {path} is missing or empty; {remedy}")
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ModelError(f"Haar cascade {path} could not be loaded; {remedy}")
        log.debug("loaded Haar cascade %s with %s", path, self.settings)

    def detect(self, gray: np.ndarray) -> list[Face]:
        """Faces in a uint8 grayscale frame, boxes in that frame's pixels."""
        if gray.ndim != 2 or gray.dtype != np.uint8:
            raise ValueError(f"expected a 2-D uint8 frame, got {gray.ndim}-D {gray.dtype}")
        s = self.settings
        height, width = gray.shape
        scale = 1.0
        if s.downscale_width and width > s.downscale_width:
            scale = s.downscale_width / width
            gray = cv2.resize(gray, (s.downscale_width, max(1, round(height * scale))),
                              interpolation=cv2.INTER_AREA)
        if s.equalize:
            gray = cv2.equalizeHist(gray)
        min_side = max(1, round(s.min_size * scale))
        boxes = self._cascade.detectMultiScale(gray, scaleFactor=s.scale_factor,
                                               minNeighbors=s.min_neighbors,
                                               minSize=(min_side, min_side))
        return [Face(_clip((round(x / scale), round(y / scale), round(w / scale), round(h / scale)),
                           width, height))
                for x, y, w, h in boxes]


def _clip(box: Box, width: int, height: int) -> Box:
    """The part of a box inside a width x height frame (may be empty)."""
    x, y, w, h = box
    x0, y0 = min(max(x, 0), width), min(max(y, 0), height)
    x1, y1 = min(max(x + w, 0), width), min(max(y + h, 0), height)
    return x0, y0, x1 - x0, y1 - y0


def crop_face(gray: np.ndarray, face: Face | Box, size: int = 48, margin: float = 0.0) -> np.ndarray:
    """A size x size uint8 crop of a face (or its box), grown by margin x its side, clipped."""
    box: Box = face.box if isinstance(face, Face) else face
    x, y, w, h = box
    dx, dy = round(w * margin), round(h * margin)
    x, y, w, h = _clip((x - dx, y - dy, w + 2 * dx, h + 2 * dy), gray.shape[1], gray.shape[0])
    if w == 0 or h == 0:
        raise ValueError(f"face box {box} lies outside the {gray.shape[1]}x{gray.shape[0]} frame")
    region = gray[y:y + h, x:x + w]
    # INTER_AREA averages when shrinking but is nearest-neighbour-like when enlarging.
    interpolation = cv2.INTER_AREA if w >= size and h >= size else cv2.INTER_LINEAR
    return cv2.resize(region, (size, size), interpolation=interpolation)
