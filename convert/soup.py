r"""Average the weights of models fine-tuned from one starting point: a uniform "model soup".

    fer-convert soup runs/ft_seed1234/model.keras runs/ft_seed2/model.keras \
        --out runs/soup/model.keras

Wortsman et al. 2022 ("Model soups", ICML) found that fine-tunes of one pre-trained model lie
in one basin of the loss, so the mean of their weights is a single network that scores like
their ensemble at the cost of one; averaging networks trained from different random starts
does not work (their units are permuted). Every weight is averaged, batch-norm moving means
and variances included, without recomputing the statistics afterwards: that sufficed for the
shipped default (the soup of two fine-tunes scores 70.74% int8 on PublicTest against 70.13%
and 70.44% for the fine-tunes; models/README.md, "Training"). The result keeps the first
model's architecture and settings (dropout, names); the others must have the same layer
types and weight shapes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .command import Tool, ToolError
from .keras_file import keras_file_problem, load_keras_model
from .options import output_problem


class SoupError(ToolError, ValueError):
    """The models cannot be averaged (different architectures, fewer than two)."""


NOT_ONE_NETWORK = "only fine-tunes of one network can be averaged"


def average_weights(models: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """The element-wise mean of several models' weight lists (``keras.Model.get_weights()``).

    Every list must hold arrays of the same shapes in the same order (one architecture).
    Raises SoupError naming the first mismatch.
    """
    if len(models) < 2:
        raise SoupError(f"a soup needs at least two models, got {len(models)}")
    first = models[0]
    for index, weights in enumerate(models[1:], start=2):
        if len(weights) != len(first):
            raise SoupError(f"model {index} has {len(weights)} weight arrays, model 1 has "
                            f"{len(first)}: {NOT_ONE_NETWORK}")
        for position, (theirs, ours) in enumerate(zip(weights, first, strict=True)):
            if theirs.shape != ours.shape:
                raise SoupError(f"weight array {position} of model {index} has shape {theirs.shape}, "
                                f"model 1's has {ours.shape}: {NOT_ONE_NETWORK}")
    return [np.mean(np.stack(arrays), axis=0).astype(arrays[0].dtype) for arrays in zip(*models, strict=True)]


def soup(paths: Sequence[Path], out: Path) -> None:
    """Load the .keras models, average their weights into the first one's architecture, save ``out``."""
    models = [load_keras_model(path) for path in paths]
    kinds = [[type(layer).__name__ for layer in m.layers] for m in models]
    for index, theirs in enumerate(kinds[1:], start=2):
        if theirs != kinds[0]:
            raise SoupError(f"model {index} has other layers than model 1: {NOT_ONE_NETWORK}")
    result = models[0]
    result.set_weights(average_weights([m.get_weights() for m in models]))
    out.parent.mkdir(parents=True, exist_ok=True)
    result.save(out)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """soup's options."""
    p.add_argument("model", type=Path, nargs="+", help="two or more .keras fine-tunes of one model")
    p.add_argument("--out", type=Path, required=True, help="the averaged .keras model to write")


def run(args: argparse.Namespace) -> int:
    """Average the models and write the soup."""
    problems = [problem for m in args.model if (problem := keras_file_problem(m))]
    if args.out.suffix != ".keras":
        problems.append(f"--out {args.out} is not a .keras file; name the soup X.keras")
    if len(args.model) < 2:
        problems.append(f"a soup needs at least two models, got {len(args.model)}")
    if not problems and (problem := output_problem(args.out, args.model)):
        problems.append(problem)
    if len({m.resolve() for m in args.model}) < len(args.model):
        problems.append("a model is given twice: a soup of copies is the model itself; "
                        "pass each fine-tune once")
    if problems:
        raise SoupError("; ".join(problems))
    soup(args.model, args.out)
    print(f"wrote {args.out}: the mean of {len(args.model)} models' weights")
    return 0


TOOL = Tool("soup", "average the weights of fine-tunes of one model", __doc__, add_arguments, run)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m fer_convert.soup``."""
    return TOOL.main(argv)


if __name__ == "__main__":
    sys.exit(main())
