"""The host tools' shared command-line options, and their ranges, checked when argparse reads them.

``p.add_argument("--epochs", type=number(int, low=1))`` turns ``--epochs 0`` into argparse's own
one-line usage error (``argument --epochs: expected an integer >= 1, got '0'``, exit 2) before any
data or model is loaded, where it used to surface minutes later as a TensorFlow traceback.
``add_data_option`` and ``add_view_options`` define the options several tools take, once.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .command import ToolError
from .data import SIDE, DataError, canonical_split

if TYPE_CHECKING:
    from .model import TTA


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


def temperature_option(value: str) -> float | str:
    """quantize's --temperature: "fit" or a number in ``temperature``'s range."""
    if value == "fit":
        return value
    try:
        return temperature(value)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"expected 'fit' or {str(exc).removeprefix('expected ')}") from None


def add_data_option(parser: argparse.ArgumentParser) -> None:
    """--data, the faces a tool reads (convert.data.load)."""
    parser.add_argument("--data", required=True, help="fer2013.npz, fer2013.csv or an image-folder root")


def add_reference_option(parser: argparse.ArgumentParser, what: str) -> None:
    """--labels: what ``what`` scores against (convert.data.Split.scored_by)."""
    parser.add_argument("--labels", choices=("fer", "ferplus"), default="fer",
                        help=f"score {what} against FER2013's labels or the FER+ majority (the faces "
                             "that have one: FER+ majority accuracy, the figure the model card leads with)")


def add_view_options(parser: argparse.ArgumentParser, *, quantizing: bool) -> None:
    """The test-time views and temperature (convert.model.TTA, with_temperature).

    ``quantizing``: quantize builds them into the int8 graph, the face and its mirror by default,
    and may fit the temperature. Otherwise evaluate's: the same graph run in float, for Keras
    models only (a .tflite file carries its own views), the plain network by default.
    """
    scope = "" if quantizing else "Keras models: "
    if quantizing:
        parser.add_argument("--no-mirror-average", dest="mirror_average", action="store_false",
                            help="export the plain network, without averaging each face with its mirror")
    else:
        parser.add_argument("--mirror-average", action="store_true",
                            help="Keras models: average each face with its mirror image (as the default "
                                 "int8 graph does)")
    parser.add_argument("--tta-crops", type=int, default=1, metavar="N",
                        help=f"{scope}average over N fixed crops inside the graph (1: the whole face only; "
                             "up to 6: whole, centre, 4 corners); N x 2 passes with the mirror")
    parser.add_argument("--tta-side", type=int, default=TTA_SIDE, metavar="PX",
                        help="side of those crops (match train --crop)")
    parser.add_argument("--centre-crop", type=int, default=SIDE, metavar="PX",
                        help=f"{scope}cut every view from the face's centre PX x PX (1..48; an odd margin "
                             "leaves its extra pixel at the bottom and right), resized back to 48x48 "
                             "inside the graph: one slice and one resize, no extra pass (default 48: the "
                             "whole face)")
    parser.add_argument("--blur", type=float, default=0.0, metavar="SIGMA",
                        help=f"{scope}blur every view with a Gaussian of SIGMA px (0..0.6; default 0: none), "
                             "folded into the first convolution so the graph gains no op; it makes test "
                             "faces look resampled, as the augmentation made every training face")
    if quantizing:
        parser.add_argument("--temperature", type=temperature_option, default=1.0, metavar="T|fit",
                            help="divide the logits by T inside the graph; fit: fit T on PublicTest "
                                 "(default 1)")
    else:
        parser.add_argument("--temperature", type=temperature, default=1.0, metavar="T",
                            help="Keras models: divide the logits by T inside the graph (default 1)")


def views(args: argparse.Namespace) -> TTA:
    """The views ``add_view_options`` asked for (imports Keras); ToolError when they cannot be built."""
    if problem := tta_side_problem(args.tta_crops, args.tta_side):
        raise ToolError(problem)
    from .model import TTA

    try:
        return TTA(args.tta_crops, args.tta_side, args.mirror_average, args.centre_crop, args.blur)
    except ValueError as exc:
        raise ToolError(str(exc)) from None


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
