"""Frame sources and the capture thread that reads them; see ``base`` for the contract."""

from .base import Frame, FrameSource, is_valid_image, to_gray
from .grabber import FrameGrabber
from .opencv import (
    GStreamerSource,
    NetworkStreamSource,
    OpenCVCameraSource,
    VideoFileSource,
    csi_pipeline,
    gstreamer_available,
    redact,
)
from .picamera import Picamera2Source
from .spec import open_source

__all__ = ["Frame", "FrameGrabber", "FrameSource", "GStreamerSource", "NetworkStreamSource",
           "OpenCVCameraSource", "Picamera2Source", "VideoFileSource", "csi_pipeline",
           "gstreamer_available", "is_valid_image", "open_source", "redact", "to_gray"]
