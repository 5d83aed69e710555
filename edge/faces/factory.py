"""The detector a [detector] table asks for, for video frames or for still images."""

from __future__ import annotations

from ..config import DetectorConfig
from .haar import HaarFaceDetector
from .yunet import YuNetFaceDetector


def build_detector(settings: DetectorConfig) -> HaarFaceDetector | YuNetFaceDetector:
    """``detector.type``'s detector with its settings; ModelError if its model cannot load."""
    return YuNetFaceDetector(settings) if settings.type == "yunet" else HaarFaceDetector(settings)

