"""From a ``--source`` SPEC to a FrameSource: files, cameras, streams, CSI, GStreamer, picamera2."""

from __future__ import annotations

from ..source_spec import parse_spec
from .base import FrameSource
from .opencv import (
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
    parsed = parse_spec(spec)
    kind, target = parsed.kind, parsed.target
    if kind == "file":
        return VideoFileSource(str(target), loop=loop)
    if kind == "gst":
        return GStreamerSource(str(target))
    if kind == "stream":
        return NetworkStreamSource(str(target))
    if kind == "csi":
        return GStreamerSource(csi_pipeline(int(target), width, height, fps, color),
                               description=f"CSI camera {target}",
                               hint="check the ribbon cable, `sudo systemctl restart nvargus-daemon`, and "
                                    "that the sensor supports this size and frame rate")
    if kind == "picamera2":
        return Picamera2Source(int(target), width=width, height=height, fps=fps,
                               lores_width=lores_width, lores_height=lores_height, color=color)
    return OpenCVCameraSource(target, width=width, height=height, fps=fps)
