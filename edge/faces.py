"""Haar face detection, face crops for the classifier, and IoU tracking with score smoothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import ConfigError, ModelError

log = logging.getLogger(__name__)

CASCADE_NAME = "haarcascade_frontalface_default.xml"
# The cascade's own detection window; no face smaller than this is found in the image it scans.
CASCADE_WINDOW = 24

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class HaarSettings:
    """Haar cascade parameters; the defaults were measured on real face media.

    opencv-python-headless 4.14, one OpenCV thread, loaded 2-core x86, best of 3 runs; every frame
    of fer_woman2.mp4 (596x336, 464 frames, one face) and fer_test.mp4 (115 dark frames); photo
    errors = face counts off on the 12 shared/media photos with a known count (Solvay excluded).

        scale nbrs width  equalize | ms/frame | woman2 found | fer_test found, >1 face | photo errs
        1.1   5    full   no       |   62.3   | 463/464      | 114/115, 27             | 0  reference
        1.1   5    320    no       |   27.1   | 463/464      | 112/115,  3             | 1
        1.2   5    480    no       |   32.1   | 461/464      |  96/115,  3             | 1
        1.2   5    320    no       |   15.9   | 460/464      |  93/115,  1             | 1
        1.2   4    320    yes      |   22.5   | 461/464      | 114/115,  0             | 1
        1.2   5    320    yes      |   18.7   | 461/464      | 114/115,  0             | 0  defaults
        1.3   4    320    yes      |   13.6   | 457/464      | 107/115,  1             | 0

    The defaults are 3.3x faster and miss one 3-frame gap (155-157) that the tracker bridges.
    Equalizing rescues the dark clip here (93 -> 114); at 1.1/full it hurt (woman2 frames with
    >1 face 3 -> 21, photo errors 0 -> 3), hence a setting. The sweep used min_size 30; 48 gave
    identical counts. Downscaling sets a floor: the cascade scans 24 px windows, so the smallest
    face found is 24 * width / downscale_width source pixels (48 px for a 640-wide frame).

    Detection is 85% of a frame's time (bench), so it runs every third frame and the tracker
    carries the boxes in between: 13.9x the original projects' loop instead of 5.4x, faces
    still classified in 100% of frames of both clips; boxes lag by up to two frames.
    """

    scale_factor: float = 1.2
    min_neighbors: int = 5
    # FER crops are 48x48: a smaller face would only be upsampled into a blurry crop.
    min_size: int = 48
    downscale_width: int = 320
    detect_every: int = 3  # read by the pipeline: Haar every N frames, tracking in between
    equalize: bool = True


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

    def __init__(self, settings: HaarSettings | None = None, cascade_path: Path | str | None = None):
        self.settings = settings or HaarSettings()
        _check_settings(self.settings)
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


def _check_settings(s: HaarSettings) -> None:
    """Refuse settings OpenCV would reject mid-stream (config.py checks its own, tighter ranges)."""
    checks = [
        (s.scale_factor > 1.0, f"scale_factor must be > 1.0, got {s.scale_factor}"),
        (s.min_neighbors >= 0, f"min_neighbors must be >= 0, got {s.min_neighbors}"),
        (s.min_size >= 1, f"min_size must be >= 1, got {s.min_size}"),
        (s.downscale_width == 0 or s.downscale_width >= CASCADE_WINDOW,
         f"downscale_width must be 0 or >= {CASCADE_WINDOW}, got {s.downscale_width}"),
        (s.detect_every >= 1, f"detect_every must be >= 1, got {s.detect_every}"),
    ]
    problems = [message for ok, message in checks if not ok]
    if problems:
        raise ConfigError(problems)


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
