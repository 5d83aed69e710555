"""Numeric command-line options with their ranges, checked when argparse reads them.

``p.add_argument("--epochs", type=number(int, low=1))`` turns ``--epochs 0`` into argparse's own
one-line usage error (``argument --epochs: expected an integer >= 1, got '0'``, exit 2) before any
data or model is loaded, where it used to surface minutes later as a TensorFlow traceback.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
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


def output_folder_problem(path: Path) -> str | None:
    """Make the folder ``path`` will be written to; why that fails (None: it is there and writable).

    Called once the other arguments have passed their checks and before the long work, so a
    report or model is not computed only to be lost.
    """
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot write {path}: cannot create the folder {folder} ({exc.strerror})"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot write {path}: the folder {folder} is not writable for this user"
    return None
