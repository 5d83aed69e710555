"""What every frame source shares: the captured ``Frame``, the ``FrameSource`` protocol, grayscale.

Every source follows :class:`FrameSource`. ``read()`` returns a BGR ``HxWx3`` or grayscale
``HxW`` uint8 image. It returns ``None`` only at the end of a file; a live source whose read
fails raises :class:`SourceError` instead, so the capture thread can tell "camera lost, reopen
it" from "clip over, stop".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeGuard

import cv2
import numpy as np


class FrameSource(Protocol):
    """What the capture thread needs from a camera, stream or file."""

    description: str
    is_live: bool
    fps: float | None  # frames per second where known (a file's once open)

    def open(self) -> None: ...
    def read(self) -> np.ndarray | None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Frame:
    """A captured image, its position among all frames read from the source, and its capture time.

    ``position``: for a file, the frame's time into it (seconds); None for a live source.
    """

    index: int
    timestamp: float
    image: np.ndarray
    position: float | None = None

    @property
    def clock(self) -> float:
        """Seconds on the scene's own clock, for smoothing over time: a file's position (so an
        offline run that reads faster than real time smooths as playback would), else the
        capture time."""
        return self.timestamp if self.position is None else self.position


def is_valid_image(image: object) -> TypeGuard[np.ndarray]:
    """Whether image is a non-empty uint8 grayscale HxW or BGR HxWx3 array."""
    return (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.size > 0
        and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3))
    )


def to_gray(frame: np.ndarray) -> np.ndarray:
    """Return a grayscale HxW uint8 image from a grayscale (returned as is), BGR or BGRA frame."""
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] in (3, 4):
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"expected a HxW or HxWx3 image, got shape {frame.shape}")
