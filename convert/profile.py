"""Where an int8 model's time goes: the LiteRT time of each stage, one thread.

    fer-convert profile models/fer_edge_fast.keras

Each prefix of the network (up to the normalisation, the stem, each stage's pool, the head)
is quantized like the shipped model and its ``invoke`` timed on one face, best of 5. A stage's
cost is the difference between consecutive prefixes; a prefix's time includes writing its
output, so a part that shrinks a large tensor can come out at zero. The plain network is
timed: the default model's int8 file runs it twice (face and mirror). This is how the fast
model's 48x48 stage was found to cost a third of its time (models/README.md, "The fast model").
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .command import Tool, ToolError
from .keras_file import keras_file_problem, load_keras_model
from .options import number
from .quantize import representative_faces, to_int8

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "fer2013_privatetest_sample.npz"


def prefix_ends(model) -> list[str]:
    """The layers after which the network is cut: normalisation, stem, each stage, the head."""
    names = [layer.name for layer in model.layers]
    ends = [name for name in names if name in ("normalize", "stem_relu") or name.endswith("_pool")]
    return [*ends, names[-1]]


def invoke_us(tflite: bytes, face: np.ndarray, number: int) -> float:
    """Best-of-5 microseconds per ``invoke`` of a uint8 model on one thread."""
    from fer_edge.classifier import load_interpreter_class

    interpreter = load_interpreter_class()(model_content=tflite, num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], face[None, :, :, None])
    return min(timeit.repeat(interpreter.invoke, number=number, repeat=5)) / number * 1e6


def profile(model_path: str | Path, faces: np.ndarray, number: int = 1000) -> list[tuple[str, float]]:
    """(layer the prefix ends at, cumulative microseconds) for each prefix, input to output."""
    import keras

    model = load_keras_model(model_path)
    rows = []
    for end in prefix_ends(model):
        prefix = keras.Model(model.input, model.get_layer(end).output)
        tflite = to_int8(prefix, faces)
        rows.append((end, invoke_us(tflite, faces[0], number)))
    return rows


def add_arguments(p: argparse.ArgumentParser) -> None:
    """profile's options."""
    p.add_argument("model", type=Path, help="a trained float .keras model")
    p.add_argument("--data", help="faces to calibrate with (default: the 500 test-sample faces)")
    p.add_argument("--number", type=number(int, low=1), default=1000, help="invokes per timing")


def run(args: argparse.Namespace) -> int:
    """Print each prefix's time and each stage's share."""
    if problem := keras_file_problem(args.model):
        raise ToolError(problem)
    faces = representative_faces(args.data, 500, seed=0) if args.data else np.load(SAMPLE)["images"]
    rows = profile(args.model, faces, args.number)
    total = rows[-1][1]
    print(f"{args.model}: {total:.1f} µs per invoke (int8, 1 thread)")
    previous = 0.0
    for end, cumulative in rows:
        print(f"  up to {end:<14} {cumulative:7.1f} µs   this part {cumulative - previous:6.1f} µs "
              f"({(cumulative - previous) / total:.0%})")
        previous = cumulative
    return 0


TOOL = Tool("profile", "time each stage of a network's int8 conversion", __doc__, add_arguments, run)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m fer_convert.profile``."""
    return TOOL.main(argv)


if __name__ == "__main__":
    sys.exit(main())
