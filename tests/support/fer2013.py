"""FER2013-shaped data for the host-side tests: the 500-face PrivateTest sample in other forms."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "fer2013_privatetest_sample.npz"  # 500 faces


def write_csv(path: Path, images: np.ndarray, labels: np.ndarray, usages: list[str]) -> Path:
    """The faces as FER2013's CSV (emotion, pixels, Usage)."""
    with path.open("w") as handle:
        handle.write("emotion,pixels,Usage\n")
        for image, label, usage in zip(images, labels, usages, strict=False):
            handle.write(f"{label},{' '.join(map(str, image.ravel()))},{usage}\n")
    return path


def usages_for(count: int) -> list[str]:
    """60% Training, 20% PublicTest, 20% PrivateTest, interleaved so each split has every class."""
    return [("Training", "Training", "Training", "PublicTest", "PrivateTest")[i % 5] for i in range(count)]
