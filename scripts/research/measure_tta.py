#!/usr/bin/env python3
"""Test-time averaging: what each added view (a crop or a mirror image) buys, per pass it costs.

    python scripts/research/measure_tta.py models/fer_edge.keras [--data ../shared/data/fer2013.npz]
        [--split PublicTest] [--sides 47 44 40] [--resampled]

Scores every face of the split once per view with the float Keras model: the whole face, a
centre crop of each side in ``--sides`` (resized back to 48x48 as ``fer_convert.quantize
--tta-crops`` does), the four corner crops of the first side, and each view's mirror image;
with ``--resampled`` also the whole face resampled without a crop (Gaussian blurs, 48 -> 47 ->
48, a half-pixel shift) and the three other placements of a 47 px window. Then prints, for
sets of views ordered by the passes they cost per face, the accuracy, the expected
calibration error (15 bins) and the gain over the whole face alone. Every pass costs the
same (one run of the network), so passes are the cost: the shipped default runs 2 (its 47 px
window and that window's mirror, 1.14 ms here). Choose on PublicTest, the selection split;
the gains are float figures, and the int8 export (``quantize``) is measured separately.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from fer_convert.calibrate import expected_calibration_error  # importing fer_convert quiets TensorFlow
from fer_convert.data import SIDE, DataError, load


def view_windows(sides: list[int]) -> dict[str, tuple[int, int, int]]:
    """Named (top, left, side) windows: the whole face, centre crops, the first side's corners.

    The geometry is quantize's own (``fer_convert.model.crop_windows``: whole, centre, then
    top-left, top-right, bottom-left, bottom-right).
    """
    from fer_convert.model import crop_windows

    whole, _, *corners = crop_windows(6, sides[0])
    windows = {"whole": whole}
    windows |= {f"centre{side}": crop_windows(2, side)[1] for side in sides}
    windows |= {f"{name}{sides[0]}": w for name, w in zip(("tl", "tr", "bl", "br"), corners, strict=True)}
    return windows


def resampled_views(images: np.ndarray) -> dict[str, np.ndarray]:
    """(N, 48, 48) float32 faces resampled without a crop, and 47 px windows off (0, 0)."""
    import cv2
    import keras
    from fer_convert.model import crop_and_resize

    def each(f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        return np.stack([f(face) for face in images]).astype(np.float32)

    x = images[..., None].astype(np.float32)
    shift = np.float32([[1, 0, -0.5], [0, 1, -0.5]])
    views = {f"blur{s}": each(lambda f, s=s: cv2.GaussianBlur(f, (0, 0), s)) for s in (0.5, 0.7)}
    views["resize47"] = keras.ops.convert_to_numpy(
        keras.ops.image.resize(keras.ops.image.resize(x, (47, 47)), (SIDE, SIDE)))[..., 0]
    views["shift0.5"] = each(lambda f: cv2.warpAffine(f, shift, (SIDE, SIDE), flags=cv2.INTER_LINEAR,
                                                      borderMode=cv2.BORDER_REFLECT))
    for top, left in ((1, 1), (0, 1), (1, 0)):
        views[f"win47@{top},{left}"] = keras.ops.convert_to_numpy(crop_and_resize(x, (top, left, 47)))[..., 0]
    return views


def view_scores(model_path: Path, images: np.ndarray, sides: list[int],
                resampled: bool = False) -> dict[str, np.ndarray]:
    """(N, 7) probabilities for every view and its mirror ("+m" suffix)."""
    import keras
    from fer_convert.model import crop_and_resize

    model = keras.models.load_model(model_path)
    x = images[..., None].astype(np.float32)
    views = {name: keras.ops.convert_to_numpy(crop_and_resize(x, window))
             for name, window in view_windows(sides).items()}
    if resampled:
        views |= {name: v[..., None] for name, v in resampled_views(images).items()}
    scores = {}
    for name, view in views.items():
        scores[name] = model.predict(view, batch_size=256, verbose=0)
        scores[name + "+m"] = model.predict(view[:, :, ::-1], batch_size=256, verbose=0)
    return scores


def candidate_sets(sides: list[int], extra: list[str]) -> list[tuple[str, ...]]:
    """The sets of views to compare: what quantize can export, each centre crop's variants, and
    each ``extra`` view alone and with its mirror."""
    corners = [f"{c}{sides[0]}" for c in ("tl", "tr", "bl", "br")]
    sets: list[tuple[str, ...]] = [("whole",), ("whole", "whole+m")]
    sets += [s for v in extra for s in ((v,), (v, v + "+m"))]
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
    p.add_argument("--sides", type=int, nargs="+", default=[47, 44, 40], help="centre-crop sides, px")
    p.add_argument("--resampled", action="store_true",
                   help="also the whole face blurred, resized 48->47->48 or shifted half a pixel, "
                        "and the other placements of a 47 px window")
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
    scores = view_scores(args.model, split.images, args.sides, args.resampled)
    extra = [name for name in scores if not name.endswith("+m") and name not in view_windows(args.sides)]
    base = float(np.mean(scores["whole"].argmax(axis=1) == split.labels))
    print(f"{args.model} on {split.name} ({len(split)} faces), float; '+m': the mirror image")
    print(f"{'passes':>6}  {'accuracy':>8}  {'gain':>6}  {'ECE':>6}  views")
    for views in candidate_sets(args.sides, extra):
        mean = np.mean([scores[v] for v in views], axis=0)
        accuracy = float(np.mean(mean.argmax(axis=1) == split.labels))
        ece = expected_calibration_error(mean, split.labels)
        print(f"{len(views):>6}  {100 * accuracy:>7.2f}%  {100 * (accuracy - base):>+6.2f}  "
              f"{100 * ece:>5.2f}%  {' '.join(views)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
