"""Faces and expressions in still images: ``fer-edge predict`` and the web page's ``POST /predict``."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .classifier import TFLiteExpressionClassifier
from .config import Config
from .errors import ImageError
from .faces import HaarFaceDetector, crop_face
from .imagefile import DEFAULT_MAX_PIXELS, decode_image


class FacePredictor:
    """Detects and classifies the faces of still images, one at a time.

    It owns its detector and interpreter: a TFLite interpreter must not be shared with the
    loop's thread (the web page serves photos while the daemon runs), and a second one of this
    model costs about 1 MB.
    """

    def __init__(self, detector: HaarFaceDetector, classifier: TFLiteExpressionClassifier,
                 max_pixels: int = DEFAULT_MAX_PIXELS):
        self.detector, self.classifier, self.max_pixels = detector, classifier, max_pixels
        self._lock = threading.Lock()  # request threads take turns on the interpreter

    @classmethod
    def from_config(cls, config: Config) -> FacePredictor:
        """The daemon's model and detector settings, in instances of our own."""
        return cls(HaarFaceDetector(config.detector),
                   TFLiteExpressionClassifier(config.model.path or None, config.model.labels or None,
                                              threads=config.model.threads), config.images.max_pixels)

    def predict(self, data: bytes) -> dict[str, Any]:
        """Faces, boxes and scores of an encoded image (JPEG, PNG, BMP, WebP...).

        Returns ``{"width", "height", "faces": [{"box": [x, y, w, h], "emotion", "confidence",
        "scores"}]}`` in the image's pixels; raises ImageError when the bytes are no image, and
        its ImageTooLargeError, before decoding, for more pixels than ``max_pixels``.
        """
        # Decoded straight to gray, the detector's input; OpenCV applies the EXIF orientation,
        # as browsers do when they show the photo, so boxes line up with what the user sees.
        gray = decode_image(data, self.max_pixels)
        faces = []
        with self._lock:
            for face in self.detector.detect(gray):
                expression = self.classifier.classify(crop_face(gray, face.box))
                faces.append({"box": [int(v) for v in face.box], "emotion": expression.label,
                              "confidence": round(expression.confidence, 4),
                              "scores": {k: round(v, 4) for k, v in expression.scores.items()}})
        return {"width": gray.shape[1], "height": gray.shape[0], "faces": faces}


def predict_files(paths: Sequence[str], model: str | None = None,
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """``fer-edge predict``: one JSON line per image, faces or an error; 1 if any image failed."""
    predictor = FacePredictor(HaarFaceDetector(), TFLiteExpressionClassifier(model), max_pixels)
    status = 0
    for path in paths:
        try:
            result = predictor.predict(Path(path).read_bytes())
        except (OSError, ImageError) as exc:
            error = f"cannot read it ({exc.strerror})" if isinstance(exc, OSError) else str(exc)
            print(json.dumps({"image": path, "error": error}), flush=True)
            status = 1
            continue
        print(json.dumps({"image": path, "faces": result["faces"]}))
    return status
