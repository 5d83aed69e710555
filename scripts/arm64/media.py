"""The inputs of ``make check-arm64``, all made from scikit-image's public-domain astronaut photo.

    python scripts/arm64/media.py OUTDIR     (prints one path per line: the photos, then the video)

PNG photos and an FFV1 video: both lossless, so every machine decodes the same pixels (MJPEG
and H.264 decode slightly differently on the aarch64 OpenCV wheels). OpenCV writes FFV1 from
BGR frames as BGR0, which decodes back to the exact frame; ``write_video`` checks that it does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/, for devkit
from devkit.media import astronaut_bgr  # noqa: E402

VIDEO_NAME = "astronaut_ffv1.mkv"


def scaled(image: np.ndarray, side: int) -> np.ndarray:
    """The square photo resized to side x side pixels."""
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)


def write_photos(out: Path) -> list[Path]:
    """Five photos with one face each (plain, mirrored and small, dark, tilted, framed) and one without."""
    face = astronaut_bgr()
    framed = np.full((480, 640, 3), 90, np.uint8)
    framed[40:440, 200:600] = scaled(face, 400)
    tilt = cv2.getRotationMatrix2D((face.shape[1] / 2, face.shape[0] / 2), 8, 1.0)
    photos = {
        "astronaut.png": face,
        "astronaut_mirrored_320.png": scaled(face[:, ::-1], 320),
        "astronaut_dark.png": (face * 0.35 + 10).astype(np.uint8),  # the detector equalizes it
        "astronaut_tilted.png": cv2.warpAffine(face, tilt, face.shape[1::-1]),
        "astronaut_framed.png": framed,
        "no_face.png": face[330:, 300:],  # the suit and the flag
    }
    paths = []
    for name, image in photos.items():
        path = out / name
        if not cv2.imwrite(str(path), image):
            raise RuntimeError(f"cannot write {path}")
        paths.append(path)
    return paths


def video_frames(count: int = 60, size: tuple[int, int] = (640, 480)) -> list[np.ndarray]:
    """The astronaut drifting right; five empty frames; a mirrored copy drifting left (a new track)."""
    width, height = size
    side = 400
    first, second = scaled(astronaut_bgr(), side), scaled(astronaut_bgr()[:, ::-1], side)
    y = (height - side) // 2
    frames = []
    for i in range(count):
        canvas = np.full((height, width, 3), 40, np.uint8)
        if i < count // 2 - 5:
            canvas[y:y + side, 2 * i:2 * i + side] = first
        elif i >= count // 2:
            x = width - side - 2 * (i - count // 2)
            canvas[y:y + side, x:x + side] = second
        frames.append(canvas)
    return frames


def write_video(path: Path, fps: float = 15.0) -> Path:
    """Write the clip as FFV1 and read it back: the decoded frames must equal those written."""
    frames = video_frames()
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}: this OpenCV has no FFV1 encoder")
    for frame in frames:
        writer.write(frame)
    writer.release()
    capture = cv2.VideoCapture(str(path))
    for index, frame in enumerate(frames):
        ok, decoded = capture.read()
        if not ok or not np.array_equal(decoded, frame):
            raise RuntimeError(f"{path}: frame {index} does not decode to the frame written")
    capture.release()
    return path


def main(argv: list[str]) -> int:
    """Write every input into the folder given; print their paths."""
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for path in [*write_photos(out), write_video(out / VIDEO_NAME)]:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
