"""The grammar of ``--source SPEC``, and the source each form names.

``parse_spec`` reads a spec without opening anything or importing OpenCV (check-config uses
it alone, so a typo is caught before rollout); ``open_source`` builds the source it names.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SourceError
from ..files import camera_device_problem

if TYPE_CHECKING:
    from .base import FrameSource

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mjpg", ".mjpeg", ".ts"})
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")
SPEC_HELP = ("use a video file path, file:PATH, a camera index or /dev/videoN, picamera2, csi, "
             "gst:PIPELINE or rtsp://...")


@dataclass(frozen=True)
class SourceSpec:
    """A parsed spec: ``kind`` is file, gst, stream, csi, picamera2 or camera; ``target`` its path,
    pipeline, URL, sensor or camera number, or device path."""

    kind: str
    target: str | int


def parse_spec(spec: str) -> SourceSpec:
    """What a --source SPEC names; SourceError naming the forms when it names nothing."""
    text = spec.strip()
    lower = text.lower()
    if lower.startswith("file:"):
        return SourceSpec("file", text[5:])
    if lower.startswith("gst:"):
        if not text[4:].strip():
            raise SourceError(f"source '{spec}' has an empty pipeline: write gst:PIPELINE ending in appsink")
        return SourceSpec("gst", text[4:].strip())
    if lower.startswith(STREAM_SCHEMES):
        return SourceSpec("stream", text)
    if match := re.fullmatch(r"(csi|picamera2)(?::(\d+))?", lower):
        return SourceSpec(match.group(1), int(match.group(2) or 0))
    if text.isdigit():
        return SourceSpec("camera", int(text))
    if text.startswith("/dev/"):  # /dev/videoN, or a stable /dev/v4l/by-id/... link
        if Path(text).is_file():  # a clip in /dev/shm
            return SourceSpec("file", text)
        if problem := camera_device_problem(text):
            raise SourceError(f"source '{spec}' {problem}")
        return SourceSpec("camera", text)
    path = Path(text)
    if text and (path.suffix.lower() in VIDEO_SUFFIXES or "/" in text or os.sep in text or path.exists()):
        return SourceSpec("file", text)
    raise SourceError(f"unknown source '{spec}': {SPEC_HELP}")


def open_source(spec: str, *, width: int = 640, height: int = 480, fps: int = 30,
                lores_width: int = 320, lores_height: int = 240, loop: bool = False,
                color: bool = False, open_timeout: float = 10.0) -> FrameSource:
    """Build (without opening) the source a --source SPEC names; SourceError if it names none.

    ``loop`` applies to video files only: they start over at their end instead of ending.
    ``color`` asks cameras that can hand gray frames (Pi camera, Jetson CSI) for BGR instead.
    ``open_timeout`` (source.open_timeout) bounds one attempt to open a stream (at least 1 s).
    """
    parsed = parse_spec(spec)
    # OpenCV loads only once a spec has parsed: check-config parses without it
    from .opencv import (
        GStreamerSource,
        NetworkStreamSource,
        OpenCVCameraSource,
        VideoFileSource,
        csi_pipeline,
    )
    from .picamera import Picamera2Source

    kind, target = parsed.kind, parsed.target
    if kind == "file":
        return VideoFileSource(str(target), loop=loop)
    if kind == "gst":
        return GStreamerSource(str(target))
    if kind == "stream":
        return NetworkStreamSource(str(target), open_timeout_ms=round(max(open_timeout, 1.0) * 1000))
    if kind == "csi":
        return GStreamerSource(csi_pipeline(int(target), width, height, fps, color),
                               description=f"CSI camera {target}",
                               hint="check the ribbon cable, `sudo systemctl restart nvargus-daemon`, and "
                                    "that the sensor supports this size and frame rate")
    if kind == "picamera2":
        return Picamera2Source(int(target), width=width, height=height, fps=fps,
                               lores_width=lores_width, lores_height=lores_height, color=color)
    return OpenCVCameraSource(target, width=width, height=height, fps=fps)
