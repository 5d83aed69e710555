"""The detector a [detector] table asks for, for video frames or for still images."""

from __future__ import annotations

import dataclasses
import logging

from ..config import DetectorConfig
from .haar import HaarFaceDetector
from .yunet import YuNetFaceDetector, yunet_unavailable

log = logging.getLogger(__name__)


def build_detector(settings: DetectorConfig) -> HaarFaceDetector | YuNetFaceDetector:
    """``detector.type``'s detector with its settings; ModelError if its model cannot load.

    YuNet on an OpenCV too old for it (JetPack 5's 4.5) falls back to Haar, with a warning.
    """
    if settings.type == "yunet":
        if (reason := yunet_unavailable()) is None:
            return YuNetFaceDetector(settings)
        log.warning("%s; using Haar's cascade instead, which finds fewer, larger, frontal faces. Install "
                    "OpenCV 4.8 or newer for YuNet, or set detector.type = \"haar\" to silence this", reason)
        settings = dataclasses.replace(settings, type="haar")
    return HaarFaceDetector(settings)
