r"""Quantize a trained Keras model to a full-integer int8 TFLite model, with accuracy gates.

    fer-convert quantize runs/main/model.keras --data ../shared/data/fer2013.npz \
        --centre-crop 47 --out models/fer_edge_int8.tflite      # the shipped default's graph

    fer-convert quantize runs/main/model.keras --data ../shared/data/fer2013.npz \
        --tta-crops 5 --temperature fit --out runs/main/model_int8.tflite

The output takes uint8 [1, 48, 48, 1] raw pixels and returns 7 uint8 scores, averaged inside
the graph over the face and its mirror image (--no-mirror-average for the plain network) and,
with --tta-crops N, over N fixed crops (convert.model.with_test_time_average); --centre-crop PX
cuts every view from the face's centre PX x PX first, --blur SIGMA folds a Gaussian blur into
the first convolution (convert.model.TTA). --temperature
divides the logits before the softmax, folded into the last dense layer: a number, or "fit"
to fit it on PublicTest (minimum negative log-likelihood of the averaged scores). The float
model the int8 one is compared with is averaged and scaled the same way. The conversion fails
(exit 1, nothing written) if any op is left in float, or if int8 accuracy on the gate split
falls more than --max-drop points below the float model's.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .calibrate import (
    averaged_probabilities,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
)
from .command import Tool, ToolError
from .data import load
from .evaluate import predict_keras, predict_tflite
from .keras_file import keras_file_problem, load_keras_model
from .options import (
    add_data_option,
    add_reference_option,
    add_view_options,
    number,
    output_problem,
    split_option,
    views,
)

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from .model import TTA


class QuantizationError(ToolError):
    """The int8 model is not acceptable: float ops left, or too much accuracy lost."""

    exit_code = 1  # the input was fine; the result failed its gate


def representative_faces(data: str | Path, count: int, seed: int) -> np.ndarray:
    """``count`` real training faces, drawn evenly from each class, to calibrate ranges."""
    split = load(data, "Training")
    rng = np.random.default_rng(seed)
    per_class = max(count // 7, 1)
    rows = np.concatenate([rng.permutation(np.flatnonzero(split.labels == c))[:per_class]
                           for c in range(7)])
    return split.images[rng.permutation(rows)]


def convert(model_path: str | Path, faces: np.ndarray, tta: TTA, temperature: float = 1.0) -> bytes:
    """The saved model's full-integer conversion, scaled by ``temperature`` and test-time averaged."""
    from .model import with_temperature, with_test_time_average

    model = with_temperature(load_keras_model(model_path), temperature)
    return to_int8(with_test_time_average(model, tta), faces)


def fitted_temperature(model_path: str | Path, data: str | Path, tta: TTA, labels: str = "fer") -> dict:
    """Fit the temperature on PublicTest scored by ``labels`` (convert.data.Split.scored_by); with
    the NLL (nats) and ECE (share) before and after."""
    from .model import view_logits

    split = load(data, "PublicTest").scored_by(labels)
    logits = view_logits(load_keras_model(model_path), split.images, tta)
    temperature = fit_temperature(logits, split.labels)
    before, after = averaged_probabilities(logits), averaged_probabilities(logits, temperature)
    return {"temperature": round(temperature, 4), "calibration_split": split.name,
            "nll_before": round(negative_log_likelihood(before, split.labels), 4),
            "nll_after": round(negative_log_likelihood(after, split.labels), 4),
            "ece_before": round(expected_calibration_error(before, split.labels), 4),
            "ece_after": round(expected_calibration_error(after, split.labels), 4)}


def to_int8(model: keras.Model, faces: np.ndarray) -> bytes:
    """Full-integer conversion of a Keras model: uint8 input and output, int8 builtins only."""
    import tensorflow as tf

    def calibration() -> Iterator[list[np.ndarray]]:
        for face in faces:
            yield [face[None, :, :, None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    return tflite_bytes(converter)


def tflite_bytes(converter: tf.lite.TFLiteConverter) -> bytes:
    """``converter.convert()`` without the SavedModel listing it prints on stdout (~45 lines)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()


def float_ops(tflite_path: str | Path) -> list[str]:
    """Names of ops that read or write a float tensor (empty for a full-integer model)."""
    from fer_edge.classifier import load_interpreter_class

    interpreter = load_interpreter_class()(model_path=str(tflite_path))
    interpreter.allocate_tensors()
    dtypes = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
    found = []
    for op in interpreter._get_ops_details():  # noqa: SLF001 - the only op-level view LiteRT offers
        tensors = [i for i in (*op["inputs"], *op["outputs"]) if i >= 0]
        if any(np.issubdtype(dtypes[i], np.floating) for i in tensors):
            found.append(op["op_name"])
    return found


def quantize(model_path: Path, data: str | Path, out: Path, gate_split: str = "PublicTest",
             max_drop: float = 1.0, calibration_faces: int = 1000, seed: int = 0,
             tta: TTA | None = None, temperature: float | str = 1.0, labels: str = "fer") -> dict:
    """Convert, check for float ops and the accuracy drop, then write ``out``.

    ``tta``: the views averaged inside the graph (None: the face and its mirror, ``TTA()``);
    ``temperature``: a number, or "fit" to fit one on PublicTest (``fitted_temperature``);
    ``labels``: what the fit and the gate score against, FER2013's labels or the FER+ majority.
    """
    from .metadata import with_views
    from .model import TTA

    tta = tta or TTA()
    calibration = (fitted_temperature(model_path, data, tta, labels)
                   if temperature == "fit" else {"temperature": float(temperature)})
    temperature = calibration["temperature"]
    faces = representative_faces(data, calibration_faces, seed)
    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / out.name
        candidate.write_bytes(with_views(convert(model_path, faces, tta, temperature), tta, temperature))
        leftovers = float_ops(candidate)
        if leftovers:
            raise QuantizationError(
                f"the int8 model still has float ops: {', '.join(sorted(set(leftovers)))}; "
                "replace those layers with ones that have int8 builtins")
        split = load(data, gate_split).scored_by(labels)
        float_scores = predict_keras(model_path, split.images, tta, temperature)
        float_acc = float(np.mean(float_scores.argmax(1) == split.labels))
        int8_acc = float(np.mean(predict_tflite(candidate, split.images).argmax(1) == split.labels))
        drop = 100 * (float_acc - int8_acc)
        if drop > max_drop:
            raise QuantizationError(
                f"int8 accuracy on {split.name} is {100 * int8_acc:.2f}%, {drop:.2f} points below "
                f"float ({100 * float_acc:.2f}%), more than the {max_drop} allowed; calibrate on "
                "more faces (--calibration-faces) or train with quantization-aware training")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(candidate.read_bytes())
    return {"out": str(out), "bytes": out.stat().st_size, "split": split.name,
            "float_accuracy": round(float_acc, 4), "int8_accuracy": round(int8_acc, 4), **calibration}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """quantize's options."""
    p.add_argument("model", type=Path, help="the trained float .keras model")
    add_data_option(p)
    p.add_argument("--out", type=Path, required=True, help="the int8 .tflite file to write")
    p.add_argument("--gate-split", default="PublicTest", type=split_option,
                   help="split on which float and int8 are compared (default: PublicTest, the selection "
                        "split, so that PrivateTest stays untouched until a model is chosen)")
    p.add_argument("--max-drop", type=number(float), default=1.0,
                   help="largest accuracy loss allowed, in points (negative: int8 must gain that much)")
    p.add_argument("--calibration-faces", type=number(int, low=7), default=1000,
                   help="real training faces (an equal number per class) that set the int8 ranges")
    add_view_options(p, quantizing=True)
    add_reference_option(p, "the temperature fit and the gate")


def run(args: argparse.Namespace) -> int:
    """Quantize and print the float and int8 accuracies."""
    if problem := (keras_file_problem(args.model)
                   or output_problem(args.out, [args.model], suffix=".tflite")):
        raise ToolError(problem)
    result = quantize(args.model, args.data, args.out, args.gate_split, args.max_drop,
                      args.calibration_faces, tta=views(args), temperature=args.temperature,
                      labels=args.labels)
    if "nll_before" in result:
        print(f"temperature {result['temperature']:.4f} fitted on {result['calibration_split']}: "
              f"NLL {result['nll_before']:.4f} -> {result['nll_after']:.4f}, "
              f"ECE {100 * result['ece_before']:.2f}% -> {100 * result['ece_after']:.2f}% (float)")
    print(f"wrote {result['out']} ({result['bytes']} bytes): {result['split']} accuracy "
          f"float {100 * result['float_accuracy']:.2f}%, int8 {100 * result['int8_accuracy']:.2f}%")
    return 0


TOOL = Tool("quantize", "convert a Keras model to int8 TFLite, with accuracy gates", __doc__,
            add_arguments, run)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m fer_convert.quantize``."""
    return TOOL.main(argv)


if __name__ == "__main__":
    sys.exit(main())
