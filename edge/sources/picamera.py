"""The Raspberry Pi camera through picamera2 (imported only when this source is opened)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..errors import SourceError

log = logging.getLogger(__name__)


class Picamera2Source:
    """A Raspberry Pi camera through picamera2, read from its small YUV420 lores stream.

    ``color`` False hands over the Y plane as it is (grayscale: what Haar takes); True converts
    the lores frame to BGR for YuNet (cv2.cvtColor, about 0.1 ms at 320x240 on the x86 dev
    machine), never the main stream.
    """

    is_live = True

    def __init__(self, camera_num: int = 0, *, width: int = 640, height: int = 480, fps: int = 30,
                 lores_width: int = 320, lores_height: int = 240, buffer_count: int = 4,
                 read_timeout: float = 2.0, color: bool = False) -> None:
        self.camera_num, self.description = camera_num, f"picamera2 camera {camera_num}"
        self.main_size, self.lores_size = (width, height), (lores_width, lores_height)
        self.fps: float | None = float(fps)
        self.frame_duration_us = int(1_000_000 / fps)  # libcamera sets the rate as a frame duration
        self.buffer_count, self.read_timeout, self.color = buffer_count, read_timeout, color
        self._camera: Any = None

    def open(self) -> None:
        """Import picamera2, configure a main and a YUV420 lores stream, and start the camera."""
        self.close()
        try:
            from picamera2 import Picamera2  # only here: it needs libcamera, which only a Pi has
        except ImportError as exc:
            raise SourceError(f"picamera2 is not installed ({exc}): on Raspberry Pi OS `sudo apt install "
                              "python3-picamera2` and create the venv with --system-site-packages") from exc
        camera = None
        try:
            camera = Picamera2(self.camera_num)
            # libcamera needs a main stream; YUV420 keeps it at 1.5 bytes a pixel. picamera2 keeps
            # only the newest completed request, so capture_array always returns the latest frame.
            camera.configure(camera.create_video_configuration(
                main={"size": self.main_size, "format": "YUV420"},
                lores={"size": self.lores_size, "format": "YUV420"},
                buffer_count=self.buffer_count,
                controls={"FrameDurationLimits": (self.frame_duration_us, self.frame_duration_us)},
            ))
            self.lores_size = tuple(camera.camera_configuration()["lores"]["size"])  # after alignment
            camera.start()
        except Exception as exc:  # picamera2 raises bare RuntimeErrors for every failure
            if camera is not None:
                camera.close()
            raise SourceError(f"{self.description} cannot be opened ({exc}): check the ribbon cable, "
                              "`rpicam-hello --list-cameras`, that no other process holds the camera, and "
                              "that the lores size is no larger than the main one") from exc
        self._camera = camera

    def read(self) -> np.ndarray | None:
        """The newest lores frame: its Y plane (grayscale HxW), or BGR HxWx3 with ``color``."""
        if self._camera is None:
            raise SourceError(f"{self.description} is not open")
        try:
            # A number as wait is a timeout in picamera2 >= 0.3.17 (older ones wait forever).
            array = self._camera.capture_array("lores", wait=self.read_timeout)
        except Exception as exc:
            raise SourceError(f"{self.description} stopped delivering frames ({exc!r})") from exc
        width, height = self.lores_size
        # YUV420 arrives as (height * 3/2, stride): the Y rows, then U and V; rows may be padded.
        if self.color:
            # I420 laid out at the stride's width: convert all of it, then drop the padding
            import cv2

            return np.ascontiguousarray(cv2.cvtColor(array, cv2.COLOR_YUV420p2BGR)[:, :width])
        return np.ascontiguousarray(array[:height, :width])

    def close(self) -> None:
        """Stop and release the camera; safe to call twice."""
        camera, self._camera = self._camera, None
        for step in (camera.stop, camera.close) if camera is not None else ():
            try:
                step()
            except Exception:  # a camera that vanished cannot stop cleanly; still release it
                log.debug("%s: %s failed", self.description, step.__name__, exc_info=True)
