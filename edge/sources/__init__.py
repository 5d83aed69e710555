"""Frame sources and the capture thread that reads them; see ``base`` for the contract.

Names load on first use, so the spec grammar (``spec``) is importable without OpenCV.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {"Frame": "base", "FrameSource": "base", "is_valid_image": "base", "to_gray": "base",
          "FrameGrabber": "grabber", "GStreamerSource": "opencv", "NetworkStreamSource": "opencv",
          "OpenCVCameraSource": "opencv", "VideoFileSource": "opencv", "csi_pipeline": "opencv",
          "gstreamer_available": "opencv", "redact": "opencv", "Picamera2Source": "picamera",
          "open_source": "spec"}

__all__ = ["Frame", "FrameGrabber", "FrameSource", "GStreamerSource", "NetworkStreamSource",
           "OpenCVCameraSource", "Picamera2Source", "VideoFileSource", "csi_pipeline",
           "gstreamer_available", "is_valid_image", "open_source", "redact", "to_gray"]


def __getattr__(name: str) -> Any:
    """The exported ``name``, importing the submodule that holds it on first use."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
