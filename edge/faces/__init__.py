"""Face detection (YuNet or Haar) and the face crops the classifier takes; see ``base`` for the contract."""

from .base import Box, Face, FaceDetector, clip_box, select
from .crops import crop_face
from .factory import build_detector
from .haar import CASCADE_NAME, CASCADE_WINDOW, HaarFaceDetector, cascade_path
from .yunet import YuNetFaceDetector, square_box

__all__ = ["CASCADE_NAME", "CASCADE_WINDOW", "Box", "Face", "FaceDetector", "HaarFaceDetector",
           "YuNetFaceDetector", "build_detector", "cascade_path", "clip_box", "crop_face", "select",
           "square_box"]
