"""Faces and expressions in still images: ``fer-edge predict`` and the web page's ``POST /predict``."""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .classifier import Expression, TFLiteExpressionClassifier
from .config import Config, DetectorConfig
from .errors import ImageError
from .faces import Face, FaceDetector, HaarFaceDetector, YuNetFaceDetector, build_detector, crop_face, select
from .faces.tiles import Finder, pyramid_boxes
from .imagefile import DEFAULT_MAX_PIXELS, decode_image, decode_image_file
from .sources import to_gray

# A still is no video frame: it is scanned so that faces from STILL_MIN_FACE px up are found.
# YuNet found every face from about 24 px of its working image: on a 2048x1536 composite of six
# astronaut faces of 26-46 px, it found 3 of 6 at a working width of 1024, 5 at 1366 and 6 at
# 1640 (= 0.8 x 2048; 250 ms on the x86 dev machine). So a photo is scanned from STILL_SCALE of
# its size (at least the video's working width, at most the whole photo), in tiles of a
# bounded size (fer_edge.faces.tiles); Haar's 24 px window is its floor the same way.
STILL_MIN_FACE = 30
STILL_SCALE = 24 / STILL_MIN_FACE
TILE_MIN_FACE = 8  # the tiles' detector keeps every box; min_face and max_faces apply to the photo

__all__ = ["FacePredictor", "ImageError", "predict_files", "still_detector"]


class FacePredictor:
    """Detects and classifies the faces of still images, one at a time.

    It owns its detector and interpreter: a TFLite interpreter must not be shared with the
    loop's thread (the web page serves photos while the daemon runs), and a second one of this
    model costs about 1 MB.
    """

    def __init__(self, detector: FaceDetector, classifier: TFLiteExpressionClassifier,
                 max_pixels: int = DEFAULT_MAX_PIXELS):
        """``detector`` as built by ``still_detector`` (or any FaceDetector), ``classifier`` the model,
        ``max_pixels`` the largest image decoded (fer_edge.imagefile)."""
        self.detector, self.classifier, self.max_pixels = detector, classifier, max_pixels
        self._finder = tile_finder(detector)
        # One still at a time, decode to classification: N uploads at once cost one photo's memory
        self._lock = threading.RLock()

    @classmethod
    def from_config(cls, config: Config) -> FacePredictor:
        """The daemon's model and detector settings, in instances of our own, set for stills."""
        return cls(still_detector(config.detector),
                   TFLiteExpressionClassifier(config.model.path or None, config.model.labels or None,
                                              threads=config.model.threads), config.images.max_pixels)

    def detect(self, image: np.ndarray) -> list[Face]:
        """The faces of a still, scanned in tiles from STILL_SCALE of its size (other detectors: as built)."""
        if self._finder is None or not isinstance(self.detector, (YuNetFaceDetector, HaarFaceDetector)):
            return self.detector.detect(image)
        settings = self.detector.settings
        height, width = image.shape[:2]
        if isinstance(self.detector, YuNetFaceDetector):
            scale = min(1.0, max(STILL_SCALE, settings.working_width / width))
            boxes = pyramid_boxes(self._finder, image, scale)
        else:  # Haar's window is 24 px, and it misses faces under 40 px; full resolution first
            boxes = pyramid_boxes(self._finder, image, 1.0, smallest=48)
        return select(boxes, width, height, settings.min_face, settings.max_faces)

    def classify(self, image: np.ndarray) -> list[tuple[Face, Expression]]:
        """Each face of a decoded still (HxW gray or HxWx3 BGR uint8), largest first, and its expression."""
        gray = to_gray(image)
        with self._lock:
            return [(face, self.classifier.classify(crop_face(gray, face.box)))
                    for face in self.detect(image)]

    def predict(self, data: bytes) -> dict[str, Any]:
        """Faces, boxes and scores of an encoded image (JPEG, PNG, BMP, WebP...).

        Returns ``{"width", "height", "faces": [{"box": [x, y, w, h], "emotion", "confidence",
        "scores"}]}`` in the image's pixels; raises ImageError when the bytes are no image, and
        its ImageTooLargeError, before decoding, for more pixels than ``max_pixels``.
        """
        # OpenCV applies the EXIF orientation, as browsers do when they show the photo, so boxes
        # line up with what the user sees.
        with self._lock:
            try:
                return self._result(decode_image(data, self.max_pixels, self._decode_mode()))
            finally:
                release_freed_heap()

    def predict_file(self, path: str | Path) -> dict[str, Any]:
        """``predict`` of an image file, which only the decode worker reads (regular files only)."""
        with self._lock:
            try:
                return self._result(decode_image_file(path, self.max_pixels, self._decode_mode()))
            finally:
                release_freed_heap()

    def _decode_mode(self) -> int:
        # Colour for YuNet; Haar and the crops take gray.
        return cv2.IMREAD_GRAYSCALE if isinstance(self.detector, HaarFaceDetector) else cv2.IMREAD_COLOR

    def _result(self, image: np.ndarray) -> dict[str, Any]:
        faces = [{"box": [int(v) for v in face.box], "emotion": expression.label,
                  "confidence": round(expression.confidence, 4),
                  "scores": {k: round(v, 4) for k, v in expression.scores.items()}}
                 for face, expression in self.classify(image)]
        return {"width": image.shape[1], "height": image.shape[0], "faces": faces}


def release_freed_heap() -> bool:
    """Give the C heap's free pages back to the system after a still (glibc's ``malloc_trim(0)``);
    False where the C library has none (musl, macOS, Windows), and nothing is done.

    glibc keeps what a thread frees in that thread's arena: untrimmed, each server thread that has
    scanned a 40 MP photo keeps some 60 MB of freed tiles and detector buffers, 253 MB after four
    (docs/web.md, Measured under attack). The trim takes 10 to 30 ms after such a photo, under
    1 ms after a small one.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, TypeError):  # no such symbol; no C library to load (Windows)
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def tile_finder(detector: FaceDetector) -> Finder | None:
    """A detector of the same kind and settings for the tiles of a still, keeping every box; None
    for a detector of another kind (it then sees the whole still)."""
    if not isinstance(detector, (YuNetFaceDetector, HaarFaceDetector)):
        return None
    settings = dataclasses.replace(detector.settings, min_face=TILE_MIN_FACE, max_faces=0, working_width=0,
                                   equalize=False)
    inner = type(detector)(settings)
    return lambda tile: [face.box for face in inner.detect(tile)]


def still_detector(settings: DetectorConfig) -> FaceDetector:
    """The [detector] table's detector, set for stills: faces from STILL_MIN_FACE px, Haar on the
    full image without equalisation (YuNet's working width is chosen per photo by FacePredictor).

    Equalising helps Haar on dim video but, at full resolution, cost it 3 face-count errors on
    the 12 test photos (0 without; docs/benchmarks.md, Face detectors), and on a large photo it
    hides small faces: the 40 px face of tests/test_photos.py's composite.
    """
    settings = dataclasses.replace(settings, min_face=min(settings.min_face, STILL_MIN_FACE))
    if settings.type == "haar":
        settings = dataclasses.replace(settings, working_width=0, equalize=False)
    return build_detector(settings)


def predict_files(paths: Sequence[str], model: str | None = None, detector: str = "yunet",
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """``fer-edge predict``: one JSON line per image, faces or an error; 1 if any image failed."""
    predictor = FacePredictor(still_detector(DetectorConfig(type=detector)),
                              TFLiteExpressionClassifier(model), max_pixels)
    status = 0
    for path in paths:
        try:
            result = predictor.predict_file(path)
        except (OSError, ImageError) as exc:
            error = f"cannot read it ({exc.strerror})" if isinstance(exc, OSError) else str(exc)
            print(json.dumps({"image": path, "error": error}), flush=True)
            status = 1
            continue
        print(json.dumps({"image": path, "faces": result["faces"]}))
    return status
