#!/usr/bin/env python3
"""What restoring a dim crop's contrast costs on FER2013, and what it does for a dim face.

    python scripts/research/measure_contrast.py [--data ../shared/data/fer2013.npz]

For both shipped int8 models: PrivateTest accuracy with crops as they are, and stretched when
their 1st-99th percentile range is under 64, 96 and 128 grey levels or always (the daemon uses
fer_edge.faces.crops.NARROW_RANGE). Then the astronaut's face at normal contrast, dimmed to a
dark room's 1/5 and as 12-bit data in a 16-bit image: its label with and without the stretch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))  # devkit: the astronaut photo

from devkit.media import astronaut_bgr  # noqa: E402
from fer_convert.data import load  # noqa: E402
from fer_edge.classifier import TFLiteExpressionClassifier  # noqa: E402
from fer_edge.faces import crop_face  # noqa: E402
from fer_edge.faces.crops import restore_contrast  # noqa: E402

MODELS = ("fer_edge_int8.tflite", "fer_edge_fast_int8.tflite")
ASTRONAUT_FACE = (177, 66, 95, 95)


def fer2013(path: Path) -> None:
    """Accuracy on PrivateTest for each threshold."""
    split = load(path, "PrivateTest")
    ranges = np.ptp(np.percentile(split.images.reshape(len(split), -1), (1, 99), axis=1), axis=0)
    for name in MODELS:
        classifier = TFLiteExpressionClassifier(name)
        for narrow in (0, 64, 96, 128, 256):
            faces = split.images if narrow == 0 else [restore_contrast(f, narrow) for f in split.images]
            predicted = np.array([np.argmax(classifier.probabilities(f)) for f in faces])
            correct = int((predicted == split.labels).sum())
            what = "as they are" if narrow == 0 else (
                "always stretched" if narrow == 256 else f"stretched if range < {narrow}")
            print(f"{name}: PrivateTest {correct / len(split):.2%} with crops {what} "
                  f"({int((ranges < narrow).sum())} of {len(split)} faces changed)", flush=True)


def dim_faces() -> None:
    """The astronaut's label at normal contrast, dimmed, and as 12-bit data, through crop_face."""
    gray = cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2GRAY)
    variants = {"normal": gray, "dark room (1/5)": (gray.astype(np.float32) / 5).astype(np.uint8),
                "12-bit data in 16 bits, read as 8-bit": (gray.astype(np.uint16) << 4 >> 8).astype(np.uint8)}
    classifier = TFLiteExpressionClassifier()
    for name, image in variants.items():
        x, y, w, h = ASTRONAUT_FACE
        raw = cv2.resize(image[y:y + h, x:x + w], (48, 48), interpolation=cv2.INTER_AREA)
        before = classifier.classify(raw)
        after = classifier.classify(crop_face(image, ASTRONAUT_FACE))
        print(f"astronaut, {name}: {before.label} {before.confidence:.2f} as it is, "
              f"{after.label} {after.confidence:.2f} through crop_face")


def main() -> int:
    """Both measurements (the FER2013 one only where the data is)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "fer2013.npz")
    args = parser.parse_args()
    dim_faces()
    if args.data.is_file():
        fer2013(args.data)
    else:
        print(f"{args.data} not found: FER2013 accuracy skipped (pass --data)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
