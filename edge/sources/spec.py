"""From a ``--source`` SPEC to a FrameSource: files, cameras, streams, CSI, GStreamer, picamera2."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import SourceError
from .base import FrameSource
from .opencv import (
    SPEC_HELP,
    STREAM_SCHEMES,
    VIDEO_SUFFIXES,
    GStreamerSource,
    NetworkStreamSource,
    OpenCVCameraSource,
    VideoFileSource,
    csi_pipeline,
)
from .picamera import Picamera2Source


def open_source(spec: str, *, width: int = 640, height: int = 480, fps: int = 30,
                lores_width: int = 320, lores_height: int = 240, loop: bool = False,
                color: bool = False) -> FrameSource:
    """Build (without opening) the source a --source SPEC names; SourceError if it names none.

    ``loop`` applies to video files only: they start over at their end instead of ending.
    ``color`` asks cameras that can hand gray frames (Pi camera, Jetson CSI) for BGR instead.
    """
    text = spec.strip()
    lower = text.lower()
    if lower.startswith("file:"):
        return VideoFileSource(text[5:], loop=loop)
    if lower.startswith("gst:"):
        if not text[4:].strip():
            raise SourceError(f"source '{spec}' has an empty pipeline: write gst:PIPELINE ending in appsink")
        return GStreamerSource(text[4:].strip())
    if lower.startswith(STREAM_SCHEMES):
        return NetworkStreamSource(text)
    if match := re.fullmatch(r"csi(?::(\d+))?", lower):
        sensor = int(match.group(1) or 0)
        return GStreamerSource(csi_pipeline(sensor, width, height, fps, color),
                               description=f"CSI camera {sensor}",
                               hint="check the ribbon cable, `sudo systemctl restart nvargus-daemon`, and "
                                    "that the sensor supports this size and frame rate")
    if match := re.fullmatch(r"picamera2(?::(\d+))?", lower):
        return Picamera2Source(int(match.group(1) or 0), width=width, height=height, fps=fps,
                               lores_width=lores_width, lores_height=lores_height, color=color)
    if text.isdigit():
        return OpenCVCameraSource(int(text), width=width, height=height, fps=fps)
    if text.startswith("/dev/"):  # /dev/videoN, or a stable /dev/v4l/by-id/... link
        return OpenCVCameraSource(text, width=width, height=height, fps=fps)
    path = Path(text)
    if text and (path.suffix.lower() in VIDEO_SUFFIXES or "/" in text or os.sep in text or path.exists()):
        return VideoFileSource(path, loop=loop)
    raise SourceError(f"unknown source '{spec}': {SPEC_HELP}")
