"""Expression classification with a full-integer TFLite model through LiteRT.

The model contract: one uint8 input of shape [1, 48, 48, 1] holding raw grayscale pixels
(0..255, normalisation is inside the model) and one output of 7 quantized scores in the
order of the ``labels.txt`` beside the model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError
from .files import regular_file_problem
from .shipped import shipped_path

log = logging.getLogger(__name__)

DEFAULT_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
DEFAULT_MODEL_NAME = "fer_edge_int8.tflite"
# A network a third the size, one pass per face: 6-8x faster, 1.1 points less accurate (models/README.md).
FAST_MODEL_NAME = "fer_edge_fast_int8.tflite"
BUNDLED_MODELS = (DEFAULT_MODEL_NAME, FAST_MODEL_NAME)
INPUT_SHAPE = (1, 48, 48, 1)


@dataclass(frozen=True)
class Expression:
    """A classified face: the top label, its probability and every label's probability."""

    label: str
    confidence: float
    scores: dict[str, float]


def bundled_model_path(name: str = DEFAULT_MODEL_NAME) -> Path:
    """A shipped model file: installed as package data, or models/ in a source checkout."""
    return shipped_path("models", name)


def default_model_path() -> Path:
    """The default shipped int8 model."""
    return bundled_model_path(DEFAULT_MODEL_NAME)


def resolve_model_path(path: str | Path | None) -> Path:
    """The file a ``model.path`` setting names.

    Empty means the default bundled model; a bundled model's bare file name
    (``fer_edge_fast_int8.tflite``) names that model wherever fer-edge is installed.
    """
    if not path:
        return default_model_path()
    path = Path(path)
    if str(path) in BUNDLED_MODELS and not path.exists():
        return bundled_model_path(str(path))
    return path


def load_interpreter_class() -> type:
    """The TFLite Interpreter class: LiteRT, then tflite-runtime, then TensorFlow."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter
        log.warning("using tflite-runtime; ai-edge-litert is faster: pip install ai-edge-litert")
        return Interpreter
    except ImportError:
        pass
    try:
        from tensorflow.lite import Interpreter
        return Interpreter
    except ImportError:
        raise ModelError("no TFLite interpreter is installed; install one with "
                         "'pip install ai-edge-litert'") from None


def read_labels(path: Path) -> tuple[str, ...]:
    """Labels, one per line, blank lines ignored."""
    try:
        labels = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    except OSError as exc:
        raise ModelError(f"cannot read labels file {path}: {exc.strerror}") from None
    if not labels:
        raise ModelError(f"labels file {path} is empty; it needs one label per line")
    return labels


def dequantize(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Quantized tensor values to float32 (identity for float tensors)."""
    scale, zero_point = detail["quantization"]
    floats = values.astype(np.float32)  # a copy, and wide enough that subtracting cannot wrap
    if scale:
        floats -= zero_point
        floats *= scale
    return floats


class TFLiteExpressionClassifier:
    """Classifies 48x48 grayscale faces; the interpreter is built and allocated once."""

    def __init__(self, model_path: str | Path | None = None, labels_path: str | Path | None = None,
                 threads: int = 1):
        self.model_path = resolve_model_path(model_path)
        if problem := regular_file_problem(self.model_path):  # never open a FIFO or a device
            raise ModelError(f"model file {self.model_path} {problem}; pass --model PATH to a "
                             f"{INPUT_SHAPE} uint8 .tflite model, or the name of a bundled one "
                             f"({', '.join(BUNDLED_MODELS)}; reinstall fer-edge if those are missing)")
        beside = self.model_path.with_name("labels.txt")
        if labels_path:
            self.labels = read_labels(Path(labels_path))
        elif beside.is_file():
            self.labels = read_labels(beside)
        else:
            self.labels = DEFAULT_LABELS
        interpreter_class = load_interpreter_class()
        try:
            self._interpreter = interpreter_class(model_path=str(self.model_path), num_threads=threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.model_path} is not a valid TFLite model ({exc}); use a .tflite file "
                             "made by fer_convert.quantize (fer-edge: --model PATH or model.path)") from None
        self._input, self._output = self._check_contract()

    def _check_contract(self) -> tuple[dict[str, Any], dict[str, Any]]:
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        found = ", ".join(f"{d['dtype'].__name__}{d['shape'].tolist()}" for d in inputs)
        if len(inputs) != 1 or inputs[0]["dtype"] != np.uint8 or tuple(inputs[0]["shape"]) != INPUT_SHAPE:
            raise ModelError(f"{self.model_path}: expected one uint8{list(INPUT_SHAPE)} input "
                             f"(raw 48x48 grayscale pixels), found {found}; quantize the model "
                             "with fer_convert.quantize or pass --model PATH to one that was")
        size = int(np.prod(outputs[0]["shape"])) if len(outputs) == 1 else -1
        if size != len(self.labels):
            raise ModelError(f"{self.model_path}: expected one output of {len(self.labels)} scores "
                             f"(one per label: {', '.join(self.labels)}), found "
                             f"{[d['shape'].tolist() for d in outputs]}; check the model and labels.txt")
        return inputs[0], outputs[0]

    @property
    def mirror_averaged(self) -> bool:
        """Whether the graph averages each face with its mirror image (two passes per face)."""
        # the flip is the graph's only REVERSE_V2 (convert.model.with_mirror_average)
        return any(op["op_name"] == "REVERSE_V2"
                   for op in self._interpreter._get_ops_details())  # noqa: SLF001 - LiteRT's only op view

    def probabilities(self, face: np.ndarray) -> np.ndarray:
        """Class probabilities (summing to 1) for one uint8 48x48 face crop."""
        self._interpreter.set_tensor(self._input["index"], face.reshape(INPUT_SHAPE))
        self._interpreter.invoke()
        scores = dequantize(self._interpreter.get_tensor(self._output["index"]).ravel(), self._output)
        np.maximum(scores, 0.0, out=scores)
        total = float(scores.sum())
        # int8 rounding leaves the softmax a little off 1; the event contract promises exactly 1
        return scores / total if total > 0 else np.full(len(scores), 1 / len(scores), np.float32)

    def to_expression(self, probabilities: np.ndarray, top: int | None = None) -> Expression:
        """Name the top label of a probability vector (``top``, or the highest score)."""
        best = int(np.argmax(probabilities)) if top is None else top
        return Expression(self.labels[best], float(probabilities[best]),
                          {label: float(p) for label, p in zip(self.labels, probabilities, strict=False)})

    def classify(self, face: np.ndarray) -> Expression:
        """Classify one uint8 48x48 face crop."""
        return self.to_expression(self.probabilities(face))
