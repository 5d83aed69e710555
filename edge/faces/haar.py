"""OpenCV's frontal-face Haar cascade, run on a downscaled grayscale copy of the frame."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from ..config import DetectorConfig
from ..errors import ModelError
from ..shipped import shipped_path
from .base import Face, check_image, select

log = logging.getLogger(__name__)

CASCADE_NAME = "haarcascade_frontalface_default.xml"  # shipped in models/ (Intel License, in the file)
# The cascade's own detection window; no face smaller than this is found in the image it scans.
CASCADE_WINDOW = 24


def cascade_path(configured: str = "") -> Path:
    """``detector.cascade``, else the cascade shipped with fer-edge (distro OpenCV has no cv2.data)."""
    return Path(configured) if configured else shipped_path("models", CASCADE_NAME)


class HaarFaceDetector:
    """Viola-Jones with OpenCV's stock frontal cascade; boxes are square already."""

    def __init__(self, settings: DetectorConfig | None = None) -> None:
        """``settings`` is the validated [detector] table (fer_edge.config holds the bounds)."""
        self.settings = settings or DetectorConfig(type="haar")
        path = cascade_path(self.settings.cascade)
        # OpenCV 5 wheels dropped CascadeClassifier.
        remedy = "install 'opencv-python-headless<5' or set detector.type = \"yunet\""
        if not hasattr(cv2, "CascadeClassifier"):
            raise ModelError(f"OpenCV {cv2.__version__} has no CascadeClassifier; {remedy}")
        if not path.is_file() or path.stat().st_size == 0:
            raise ModelError(f"Haar cascade {path} is missing or empty; set detector.cascade to the path "
                             f"of {CASCADE_NAME} or reinstall fer-edge")
        try:
            self._cascade = cv2.CascadeClassifier(str(path))
        except (cv2.error, SystemError):  # a malformed XML raises from inside the constructor
            self._cascade = cv2.CascadeClassifier()
        if self._cascade.empty():
            raise ModelError(f"Haar cascade {path} could not be loaded: not an OpenCV cascade XML; "
                             f"set detector.cascade to the path of {CASCADE_NAME}")
        log.debug("loaded Haar cascade %s with %s", path, self.settings)

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in a grayscale or BGR uint8 frame, largest first, boxes in that frame's pixels."""
        check_image(image)
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        s = self.settings
        height, width = gray.shape
        scale = 1.0
        if s.working_width and width > s.working_width:
            scale = s.working_width / width
            gray = cv2.resize(gray, (s.working_width, max(1, round(height * scale))),
                              interpolation=cv2.INTER_AREA)
        if s.equalize:
            gray = cv2.equalizeHist(gray)
        min_side = max(1, round(s.min_face * scale))
        boxes = self._cascade.detectMultiScale(gray, scaleFactor=s.scale_factor,
                                               minNeighbors=s.min_neighbors, minSize=(min_side, min_side))
        return select(((round(x / scale), round(y / scale), round(w / scale), round(h / scale))
                       for x, y, w, h in boxes), width, height, s.min_face, s.max_faces)
