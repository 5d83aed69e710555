"""OpenCV sources: video files, V4L2 cameras, network streams and GStreamer pipelines (Jetson CSI)."""

from __future__ import annotations

import logging
import math
import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from ..errors import SourceError
from ..files import regular_file_problem

log = logging.getLogger(__name__)

DEFAULT_FILE_FPS = 30.0
REENCODE_HINT = "re-encode it to H.264 MP4, e.g. `ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p out.mp4`"


def gstreamer_available() -> bool:
    """Whether this OpenCV build has the GStreamer video backend (pip wheels do not)."""
    match = re.search(r"^\s*GStreamer:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return match is not None and match.group(1).upper() != "NO"


def csi_pipeline(sensor_id: int = 0, width: int = 640, height: int = 480, fps: int = 30,
                 color: bool = False) -> str:
    """The GStreamer pipeline for a Jetson CSI camera: GRAY8 frames, or BGR with ``color`` (YuNet)."""
    # nvarguscamerasrc only produces NV12 in NVMM memory; nvvidconv (the VIC engine) converts to
    # GRAY8 in system memory, so the CPU gets the luma plane with no videoconvert step. For
    # colour, the VIC makes BGRx and videoconvert only drops the x (OpenCV takes BGR). appsink
    # keeps one buffer and drops the rest: newest frame wins.
    convert = ("nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR" if color
               else "nvvidconv ! video/x-raw,format=GRAY8")
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM),width={width},height={height},framerate={fps}/1,format=NV12 ! "
        f"{convert} ! appsink drop=true max-buffers=1 sync=false"
    )


def redact(url: str) -> str:
    """The URL with any password replaced by ***, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class OpenCVSource:
    """A cv2.VideoCapture behind the FrameSource interface; subclasses say how to create it."""

    is_live = True

    def __init__(self, description: str, remedy: str) -> None:
        self.description = description
        self.remedy = remedy  # the SourceError text when the capture does not open
        self.fps: float | None = None  # what the source reports once open
        self._cap: Any = None

    def _capture(self) -> Any:
        raise NotImplementedError

    def open(self) -> None:
        """Open the capture; raises SourceError naming the cause and the remedy."""
        self.close()
        cap = self._capture()
        if not cap.isOpened():
            cap.release()
            raise SourceError(self.remedy)
        reported = cap.get(cv2.CAP_PROP_FPS)
        # Cameras and streams often report 0 or nonsense (90000) when they do not know.
        self.fps = reported if math.isfinite(reported) and 0 < reported < 1000 else None
        self._cap = cap

    def read(self) -> np.ndarray | None:
        """Next frame; SourceError when a live source fails (see the module docstring)."""
        if self._cap is None:
            raise SourceError(f"{self.description} is not open")
        ok, frame = self._cap.read()
        if not ok:
            raise SourceError(f"{self.description} delivered no frame (unplugged, or the stream stalled)")
        return frame

    def close(self) -> None:
        """Release the capture; safe to call twice, and while an earlier release is stuck."""
        cap, self._cap = self._cap, None  # first, so a reopen never releases it a second time
        if cap is not None:
            cap.release()


class VideoFileSource(OpenCVSource):
    """A video file decoded by OpenCV; read() returns None at its end, or starts over with ``loop``."""

    is_live = False

    def __init__(self, path: str | os.PathLike[str], *, loop: bool = False) -> None:
        self.path = Path(path)
        self.loop = loop
        name = f"video file {self.path}"
        super().__init__(name, f"{name} is not a readable video (OpenCV cannot open it): {REENCODE_HINT}")
        self._first: np.ndarray | None = None
        self.frame_count: int | None = None  # what the container declares, once open
        self._in_pass = 0  # frames read since the start (or the last rewind)
        self._short_warned = False

    def _capture(self) -> Any:
        return cv2.VideoCapture(str(self.path))

    def open(self) -> None:
        """Open the file and decode its first frame, so an empty or corrupt file fails here."""
        if problem := regular_file_problem(self.path):
            fix = f"check the path (relative to {Path.cwd()})" if problem == "not found" else \
                "give a video file (save a stream or pipe to one first), or a camera's spec"
            raise SourceError(f"video file {self.path} {problem}; {fix}")
        super().open()
        ok, self._first = self._cap.read()
        if not ok:
            self.close()
            raise SourceError(f"video file {self.path} is not a readable video (no frame decoded): "
                              f"{REENCODE_HINT}")
        if self.fps is None:
            log.warning("%s reports no frame rate; assuming %g fps", self.description, DEFAULT_FILE_FPS)
            self.fps = DEFAULT_FILE_FPS
        declared = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(declared) if math.isfinite(declared) and declared >= 1 else None
        self._in_pass = 1

    def read(self) -> np.ndarray | None:
        """Next frame, or None at the end of the file."""
        if self._cap is None:
            raise SourceError(f"{self.description} is not open")
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        ok, frame = self._cap.read()
        if not ok:
            self._check_complete()
        if not ok and self.loop:  # soak runs and demos: rewind instead of ending
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
            self._in_pass = 0
        self._in_pass += ok
        return frame if ok else None

    def _check_complete(self) -> None:
        """Warn (once) when a pass ended before the frames the container declares: damage or truncation."""
        declared, read = self.frame_count, self._in_pass
        # Some containers only estimate the count (duration x rate): a frame or 1 % short is no damage.
        if self._short_warned or declared is None or declared - read <= max(1, declared // 100):
            return
        self._short_warned = True
        log.warning("%s ended after %d of the %d frames its container declares: it is damaged or truncated, "
                    "and the rest was not read; check it with `ffprobe -v error %s`, or %s", self.description,
                    read, declared, self.path, REENCODE_HINT)


class OpenCVCameraSource(OpenCVSource):
    """A USB/V4L2 camera by index or device path, asked for a size and frame rate."""

    def __init__(self, device: int | str, *, width: int = 640, height: int = 480, fps: int = 30) -> None:
        self.device, self.width, self.height, self.requested_fps = device, width, height, fps
        linux = sys.platform.startswith("linux")
        name = f"/dev/video{device}" if isinstance(device, int) and linux else device
        super().__init__(f"camera {name}", f"camera {name} cannot be opened: check it is plugged in, that "
                         "the user is in the 'video' group, and `v4l2-ctl --list-devices`")

    def _capture(self) -> Any:
        cap = cv2.VideoCapture(self.device, cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY)
        if cap.isOpened():
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_FPS, self.requested_fps)
            # One driver buffer: a frame waiting in a deep V4L2 queue is already stale.
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            got = [cap.get(prop) for prop in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT,
                                              cv2.CAP_PROP_FPS)]
            log.info("%s: asked %dx%d@%d, got %gx%g@%g", self.description, self.width, self.height,
                     self.requested_fps, *got)  # drivers silently pick the nearest mode they have
        return cap


class NetworkStreamSource(OpenCVSource):
    """An RTSP or HTTP(S) stream through OpenCV's FFmpeg backend."""

    def __init__(self, url: str, *, open_timeout_ms: int = 10_000, read_timeout_ms: int = 5_000) -> None:
        self.url, self.open_timeout_ms, self.read_timeout_ms = url, open_timeout_ms, read_timeout_ms
        super().__init__(f"stream {redact(url)}", f"stream {redact(url)} cannot be opened: check the URL, "
                         "the credentials and that the camera is reachable (try `ffprobe URL`)")

    def _capture(self) -> Any:
        if not hasattr(cv2, "CAP_PROP_READ_TIMEOUT_MSEC"):  # older OpenCV builds (JetPack 4) lack them
            return cv2.VideoCapture(self.url, cv2.CAP_FFMPEG)
        # Bounded timeouts, so a dead camera surfaces as a failed read instead of a hung thread.
        # RTSP goes over UDP unless OPENCV_FFMPEG_CAPTURE_OPTIONS="rtsp_transport;tcp" says otherwise.
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self.open_timeout_ms,
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.read_timeout_ms]
        return cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)


class GStreamerSource(OpenCVSource):
    """A GStreamer pipeline ending in appsink (a Jetson CSI camera, or the user's own)."""

    def __init__(self, pipeline: str, *, description: str = "GStreamer pipeline",
                 hint: str = "test it with `gst-launch-1.0`, replacing appsink with fakesink") -> None:
        self.pipeline = pipeline
        super().__init__(description, f"{description} cannot be started: {hint}; pipeline: {pipeline}")

    def _capture(self) -> Any:
        if not gstreamer_available():
            raise SourceError(
                f"{self.description} needs OpenCV built with GStreamer, and this one is not (the pip wheel "
                "never is): on Jetson use JetPack's OpenCV (`sudo apt install python3-opencv`, "
                "`pip uninstall opencv-python-headless`, and create the venv with --system-site-packages)")
        return cv2.VideoCapture(self.pipeline, cv2.CAP_GSTREAMER)
