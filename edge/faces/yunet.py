"""YuNet (Yu et al., 2023), a small CNN face detector, through OpenCV's ``cv2.FaceDetectorYN``.

It finds faces from about 10 px (at its working size) to frame-filling, turned and partly
hidden, where Haar's frontal cascade needs large, frontal faces. Its boxes are portrait
(about 0.73 w/h) and cover forehead to chin; ``square_box`` turns them into the square,
Haar-like crops FER2013's faces resemble.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ..config import DetectorConfig
from ..errors import ModelError
from ..shipped import shipped_path
from .base import Box, Face, check_image, select

log = logging.getLogger(__name__)

MODEL_NAME = "face_detection_yunet_2023mar.onnx"  # MIT; models/README.md gives its provenance
# A Haar box measured against YuNet's on the same faces: 558 frames of fer_woman2.mp4 and
# fer_test.mp4 where both found one face (Haar on the full frame). Medians: the square's side
# is 0.889 x YuNet's height (IQR 0.071), its centre 0.020 x that height above YuNet's (IQR 0.033),
# the same across (0.002).
SIDE_PER_HEIGHT = 0.889
CENTRE_UP_PER_HEIGHT = 0.020


MIN_OPENCV = (4, 8)


def opencv_version(version: str | None = None) -> tuple[int, int]:
    """OpenCV's (or ``version``'s) major and minor version, e.g. (4, 14)."""
    major, minor = (int(part) for part in (version or cv2.__version__).split(".")[:2])
    return major, minor


def yunet_unavailable(version: str | None = None, has_api: bool | None = None) -> str | None:
    """Why this OpenCV (or ``version``) cannot run the shipped YuNet, or None if it can."""
    has_api = hasattr(cv2, "FaceDetectorYN") if has_api is None else has_api
    if has_api and opencv_version(version) >= MIN_OPENCV:
        return None
    # 4.5.4 to 4.7 have FaceDetectorYN but fail on this model's graph at the first frame
    return (f"OpenCV {version or cv2.__version__} cannot run YuNet's {MODEL_NAME} (it needs 4.8 or newer: "
            "JetPack 6 and the pip wheels have it; JetPack 5 has 4.5)")


def square_box(x: float, y: float, w: float, h: float) -> Box:
    """The square, Haar-like box for a YuNet box (all in the same pixels)."""
    side = SIDE_PER_HEIGHT * h
    cx, cy = x + w / 2, y + h / 2 - CENTRE_UP_PER_HEIGHT * h
    return round(cx - side / 2), round(cy - side / 2), round(side), round(side)


class YuNetFaceDetector:
    """YuNet on a copy of the frame scaled to ``working_width`` (or a still's own working size)."""

    def __init__(self, settings: DetectorConfig | None = None, model_path: str | Path | None = None) -> None:
        """``settings`` is the validated [detector] table; ``model_path`` defaults to the shipped file."""
        self.settings = s = settings or DetectorConfig()
        path = Path(model_path) if model_path is not None else shipped_path("models", MODEL_NAME)
        if reason := yunet_unavailable():
            raise ModelError(f"{reason}: pip install 'opencv-python-headless>=4.8,<5', or set "
                             "detector.type = \"haar\"")
        if not path.is_file() or path.stat().st_size == 0:
            raise ModelError(f"YuNet model {path} is missing or empty; reinstall fer-edge, "
                             "or set detector.type = \"haar\"")
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 240), s.score_threshold,
                                                  s.nms_threshold, 5000)
        except cv2.error as exc:
            raise ModelError(f"YuNet model {path} could not be loaded ({str(exc).strip().splitlines()[-1]}); "
                             "reinstall fer-edge, or set detector.type = \"haar\"") from None
        self._input_size = (320, 240)
        log.debug("loaded YuNet %s with %s", path, s)

    def detect(self, image: np.ndarray, working_width: int | None = None) -> list[Face]:
        """Faces in a BGR (or grayscale: less recall) uint8 frame, largest first, square boxes in its
        pixels. ``working_width`` overrides the configured one (stills use their own)."""
        check_image(image)
        s = self.settings
        height, width = image.shape[:2]
        if min(height, width) < s.min_face:
            return []  # no face of min_face px fits (and YuNet answers thin images with inf boxes)
        target = s.working_width if working_width is None else working_width
        scale = target / width if target and width > target else 1.0
        small = image if scale == 1.0 else cv2.resize(
            image, (round(width * scale), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
        if small.ndim == 2:  # YuNet takes three channels; a gray frame finds fewer faces
            small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        size = (small.shape[1], small.shape[0])
        if size != self._input_size:
            self._net.setInputSize(size)
            self._input_size = size
        _, found = self._net.detect(small)
        return select(self._boxes(found, scale), width, height, s.min_face, s.max_faces)

    @staticmethod
    def _boxes(found: np.ndarray | None, scale: float) -> Iterator[Box]:
        """Square boxes in source pixels from YuNet's rows (x, y, w, h, 5 landmarks, score)."""
        for row in () if found is None else found:
            x, y, w, h = (float(v) / scale for v in row[:4])
            # on degenerate inputs YuNet returns rows of inf and 1e25; they are no faces
            if all(map(math.isfinite, (x, y, w, h))) and w > 0 and h > 0:
                yield square_box(x, y, w, h)
