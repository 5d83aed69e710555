"""Test and demo media built from a real face: scikit-image's public-domain astronaut photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def astronaut_bgr() -> np.ndarray:
    """scikit-image's astronaut photo (a real frontal face, public domain) as BGR."""
    try:
        from skimage import data
    except ImportError:
        raise RuntimeError("the demo video needs scikit-image: pip install scikit-image") from None
    import cv2

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def make_face_video(path: Path, frames: int = 90, fps: float = 15.0, size: tuple[int, int] = (640, 480),
                    step: int = 2) -> Path:
    """Write a video of the astronaut's face drifting across a larger frame (MJPG in .avi)."""
    import cv2

    face = astronaut_bgr()
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path} with OpenCV's MJPG writer")
    h, w = face.shape[:2]
    scale = min(1.0, 0.9 * height / h)
    face = cv2.resize(face, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    h, w = face.shape[:2]
    for i in range(frames):
        canvas = np.full((height, width, 3), 40, np.uint8)
        x = min(i * step, width - w)
        canvas[(height - h) // 2:(height - h) // 2 + h, x:x + w] = face
        writer.write(canvas)
    writer.release()
    return path
