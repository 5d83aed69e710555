"""Test and demo media built from a real face: scikit-image's public-domain astronaut photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Where a face sits in skimage.data.astronaut() (512x512), as Haar boxes it.
ASTRONAUT_FACE = (177, 66, 95, 95)
SIDES = (40, 55, 70, 90, 120, 150)  # the six faces' widths in the composite, in pixels


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


def composite() -> tuple[bytes, list[tuple[int, int]]]:
    """A 2048x1536 PNG with six astronaut faces of 40 to 150 px, and each face's centre."""
    import cv2
    from skimage import data as skimage_data

    # a real, faceless scene behind them (scikit-image's coffee cup, public domain)
    canvas = cv2.resize(cv2.cvtColor(skimage_data.coffee(), cv2.COLOR_RGB2BGR), (2048, 1536))
    fx, fy, side0, _ = ASTRONAUT_FACE
    # the head and shoulders around the face: twice its side, centred on it
    top, left = fy + side0 // 2 - side0, fx + side0 // 2 - side0
    head = astronaut_bgr()[top:top + 2 * side0, left:left + 2 * side0]
    centres = []
    for i, side in enumerate(SIDES):
        small = cv2.resize(head, (2 * side, 2 * side), interpolation=cv2.INTER_AREA)
        x, y = 100 + (i % 3) * 650, 150 + (i // 3) * 700
        canvas[y:y + 2 * side, x:x + 2 * side] = small
        centres.append((x + side, y + side))
    ok, png = cv2.imencode(".png", canvas)
    assert ok
    return png.tobytes(), centres
