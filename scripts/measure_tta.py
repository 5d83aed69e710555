#!/usr/bin/env python3
"""Test-time averaging: what each added view (a crop or a mirror image) buys, per pass it costs.

    python scripts/measure_tta.py models/fer_edge.keras [--data ../shared/data/fer2013.npz]
        [--split PublicTest] [--sides 46 44 40]

Scores every face of the split once per view with the float Keras model: the whole face, a
centre crop of each side in ``--sides`` (resized back to 48x48 as ``fer_convert.quantize
--tta-crops`` does), the four corner crops of the first side, and each view's mirror image.
Then prints, for sets of views ordered by the passes they cost per face, the accuracy, the
expected calibration error (15 bins) and the gain over the whole face alone. Every pass costs
the same (one run of the network), so passes are the cost: the shipped default runs 2 (the
face and its mirror, 1.13 ms here). Choose on PublicTest, the selection split; the gains are
float figures, and the int8 export (``quantize --tta-crops``) is measured separately.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from fer_convert.calibrate import expected_calibration_error  # noqa: E402
from fer_convert.data import SIDE, DataError, load  # noqa: E402


def view_windows(sides: list[int]) -> dict[str, tuple[int, int, int]]:
    """Named (top, left, side) windows: the whole face, centre crops, the first side's corners."""
    windows = {"whole": (0, 0, SIDE)}
    for side in sides:
        mid = (SIDE - side) // 2
        windows[f"centre{side}"] = (mid, mid, side)
    side, far = sides[0], SIDE - sides[0]
    windows |= {f"tl{side}": (0, 0, side), f"tr{side}": (0, far, side),
                f"bl{side}": (far, 0, side), f"br{side}": (far, far, side)}
    return windows


def view_scores(model_path: Path, images: np.ndarray, sides: list[int]) -> dict[str, np.ndarray]:
    """(N, 7) probabilities for every view and its mirror ("+m" suffix)."""
    import keras
    from fer_convert.model import crop_and_resize

    model = keras.models.load_model(model_path)
    x = images[..., None].astype(np.float32)
    scores = {}
    for name, window in view_windows(sides).items():
        view = keras.ops.convert_to_numpy(crop_and_resize(x, window))
        scores[name] = model.predict(view, batch_size=256, verbose=0)
        scores[name + "+m"] = model.predict(view[:, :, ::-1], batch_size=256, verbose=0)
    return scores


def candidate_sets(sides: list[int]) -> list[tuple[str, ...]]:
    """The sets of views to compare: what quantize can export, and each centre crop's variants."""
    corners = [f"{c}{sides[0]}" for c in ("tl", "tr", "bl", "br")]
    sets: list[tuple[str, ...]] = [("whole",), ("whole", "whole+m")]
    for side in sides:
        c = f"centre{side}"
        sets += [(c,), (c, c + "+m"), ("whole", c), ("whole", "whole+m", c),
                 ("whole", "whole+m", c, c + "+m")]
    c = f"centre{sides[0]}"
    five = ["whole", c, *corners]
    sets.append(tuple(itertools.chain.from_iterable((v, v + "+m") for v in five[:3])))
    sets.append(tuple(itertools.chain.from_iterable((v, v + "+m") for v in five)))
    return sorted(dict.fromkeys(sets), key=len)


def main(argv: list[str] | None = None) -> int:
    """Print one line per set of views: passes, accuracy, ECE, gain over the whole face."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="a float .keras model")
    p.add_argument("--data", type=Path, default=Path("../shared/data/fer2013.npz"))
    p.add_argument("--split", default="PublicTest")
    p.add_argument("--sides", type=int, nargs="+", default=[44, 40], help="centre-crop sides, px")
    args = p.parse_args(argv)
    if not all(1 <= s < SIDE for s in args.sides):
        print(f"error: --sides must be 1..{SIDE - 1} px, got {args.sides}", file=sys.stderr)
        return 2
    if not args.model.is_file():
        print(f"error: model {args.model} not found", file=sys.stderr)
        return 2
    try:
        split = load(args.data, args.split)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scores = view_scores(args.model, split.images, args.sides)
    base = float(np.mean(scores["whole"].argmax(axis=1) == split.labels))
    print(f"{args.model} on {split.name} ({len(split)} faces), float; '+m': the mirror image")
    print(f"{'passes':>6}  {'accuracy':>8}  {'gain':>6}  {'ECE':>6}  views")
    for views in candidate_sets(args.sides):
        mean = np.mean([scores[v] for v in views], axis=0)
        accuracy = float(np.mean(mean.argmax(axis=1) == split.labels))
        ece = expected_calibration_error(mean, split.labels)
        print(f"{len(views):>6}  {100 * accuracy:>7.2f}%  {100 * (accuracy - base):>+6.2f}  "
              f"{100 * ece:>5.2f}%  {' '.join(views)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
