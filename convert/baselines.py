"""Other projects' loops, measured like the daemon's: the original projects' and the fer package's.

Both are :class:`fer_edge.bench.loops.Loop` objects, so ``fer-convert compare`` runs them
in turns with the daemon's loop. They need TensorFlow (Keras predict; fer's TFLite interpreter).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from fer_edge.bench.loops import SAMPLES, Loop
from fer_edge.config import DetectorConfig
from fer_edge.faces import CASCADE_WINDOW, HaarFaceDetector
from fer_edge.sources import Frame, FrameSource
from fer_edge.stats import StageTimes

# The original projects: detectMultiScale(gray, 1.3, 5) on the full frame, no minSize.
SEED_HAAR = DetectorConfig(type="haar", scale_factor=1.3, min_neighbors=5, min_face=CASCADE_WINDOW,
                           working_width=0, equalize=False, max_faces=0)
FER_SIZE = (640, 480)  # the frame size of the comparison with the fer package


def seed_loop(source: FrameSource, predict: Callable[[np.ndarray], Any], limit: int) -> Loop:
    """The original projects' loop: Haar 1.3/5 on the full frame, Keras predict on each face."""
    detector, times = HaarFaceDetector(SEED_HAAR), StageTimes(SAMPLES)

    def handle(frame: Frame) -> int:
        with times.time("detect"):
            faces = detector.detect(frame.image)
        with times.time("classify"):
            for face in faces:
                x, y, w, h = face.box
                crop = cv2.resize(frame.image[y:y + h, x:x + w], (48, 48))
                with times.time("classify_face"):
                    predict(crop)
        return len(faces)

    return Loop("seed", source, handle, times, limit=limit)


def fer_loop(source: FrameSource, limit: int) -> Loop:
    """The ``fer`` package's pipeline on 640x480 frames: ``FER(mtcnn=False).detect_emotions``.

    That is fer's default: Haar (scale 1.1, 5 neighbours, 50 px minimum) on the full frame,
    then its mini-Xception on each face through TensorFlow's TFLite interpreter (its int8
    model). It takes the BGR frame and converts it to grayscale itself.
    """
    from fer.fer import FER

    detector, times = FER(mtcnn=False), StageTimes(SAMPLES)

    def handle(frame: Frame) -> int:
        with times.time("detect_classify"):
            return len(detector.detect_emotions(frame.image))

    return Loop("fer", source, handle, times, limit=limit, size=FER_SIZE, gray=False)
