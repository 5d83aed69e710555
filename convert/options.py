"""Numeric command-line options with their ranges, checked when argparse reads them.

``p.add_argument("--epochs", type=number(int, low=1))`` turns ``--epochs 0`` into argparse's own
one-line usage error (``argument --epochs: expected an integer >= 1, got '0'``, exit 2) before any
data or model is loaded, where it used to surface minutes later as a TensorFlow traceback.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path


def number(kind: type[int] | type[float], *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type=`` converter to ``kind`` within [low, high] (an end is open when asked).

    Raises argparse.ArgumentTypeError naming the range and the value given.
    """
    name = "an integer" if kind is int else "a number"
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    expected = f"{name} {' and '.join(bounds)}".strip()

    def convert(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if (not math.isfinite(value)
                or (low is not None and (value < low or (low_open and value == low)))
                or (high is not None and (value > high or (high_open and value == high)))):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return convert


def split_option(name: str) -> str:
    """An argparse ``type=`` for a FER2013 split name (convert.data.canonical_split)."""
    from .data import DataError, canonical_split

    try:
        return canonical_split(name)
    except DataError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


TTA_SIDE = 44  # --tta-side's default, the side of train --crop 44's windows


def tta_side_problem(crops: int, side: int) -> str | None:
    """--tta-side given where it does nothing: with one crop, the whole face, it sets no window."""
    if crops == 1 and side != TTA_SIDE:
        return (f"--tta-side {side} sets the side of the crops of --tta-crops 2..6; with one crop (the "
                "whole face) it has no effect: add --tta-crops N or leave it out")
    return None


# --temperature's range: the fitted ones are 0.77-0.80; outside this the softmax is flat or one-hot
temperature = number(float, low=0.05, high=20)


def output_problem(path: Path, inputs: Iterable[str | Path] = (), suffix: str = "") -> str | None:
    """Why ``path`` cannot be written once the work is done (None: it can). Creates nothing.

    Refused: an existing folder, one of the command's own input files (it would be overwritten),
    another suffix than ``suffix`` (when given), and a place under a file or a folder this user
    cannot write. Checked before the long work, so a report or model is not computed only to be
    lost, and a refused run leaves no folder behind; the writer makes the folders it needs.
    """
    if suffix and path.suffix != suffix:
        return f"{path} does not end in {suffix}; name the output X{suffix}"
    if path.is_dir():
        return f"{path} is a folder; name a file to write"
    if any(path.resolve() == Path(given).resolve() for given in inputs):
        return f"{path} is also an input of this command: writing it would overwrite it; name another file"
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"cannot write {path}: {folder} is a file, not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot write {path}: the folder {folder} is not writable for this user"
    return None
