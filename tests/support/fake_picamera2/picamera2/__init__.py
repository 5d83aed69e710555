"""A stand-in for picamera2 (tests only, put on PYTHONPATH): the astronaut as YUV420 lores frames.

Faults come from the environment, so a daemon in a subprocess can be given them:
``FAKE_PICAMERA2_FRAMES`` N: capture_array fails after N frames (the camera was unplugged);
``FAKE_PICAMERA2_STOP_BLOCKS`` 1: then ``stop()`` never returns (raspberrypi/picamera2#1065);
``FAKE_PICAMERA2_BUSY`` 1: a new Picamera2 cannot be made while an old one is not closed.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import cv2
import numpy as np
from skimage import data

_held = threading.Lock()  # one camera: held from Picamera2() until close()
_opened = 0


class Picamera2:
    """The few calls fer_edge.sources.picamera makes."""

    def __init__(self, camera_num: int = 0) -> None:
        global _opened
        busy = os.environ.get("FAKE_PICAMERA2_BUSY") == "1"
        if not _held.acquire(blocking=False):
            if busy:
                raise RuntimeError("Failed to acquire camera: Device or resource busy")
        _opened += 1
        self._first_open = _opened == 1
        self._lores = (320, 240)
        self._frames = 0
        self._failed = False

    def create_video_configuration(self, **config: Any) -> dict[str, Any]:
        return config

    def configure(self, config: dict[str, Any]) -> None:
        self._lores = tuple(config["lores"]["size"])

    def camera_configuration(self) -> dict[str, Any]:
        return {"lores": {"size": self._lores}}

    def start(self) -> None:
        bgr = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), self._lores)
        self._yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)

    def capture_array(self, name: str = "main", wait: float | None = None) -> np.ndarray:
        time.sleep(1 / 15)
        limit = int(os.environ.get("FAKE_PICAMERA2_FRAMES", "0"))
        # only the first camera object is unplugged: a reopened one delivers again
        if self._failed or (self._first_open and limit and self._frames >= limit):
            self._failed = True
            raise RuntimeError("Camera frontend has timed out!")
        self._frames += 1
        return self._yuv.copy()

    def stop(self) -> None:
        if self._failed and os.environ.get("FAKE_PICAMERA2_STOP_BLOCKS") == "1":
            threading.Event().wait()  # never returns

    def close(self) -> None:
        if _held.locked():
            _held.release()
