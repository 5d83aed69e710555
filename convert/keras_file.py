"""Loading a Keras model the user named, with one clear error when it cannot be read.

Keras 3 answers a .keras file that is not its zip archive (a corrupt or truncated download, a
.tflite renamed) with "File not found: ... Please ensure the file is an accessible `.keras` zip
file", even though the file exists. Every host tool loads the models it is given through
``load_keras_model``, which names what is wrong with the file and what to pass instead.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from fer_edge.errors import ModelError

from .data import LABELS, SIDE

REMEDY = "pass a .keras model written by fer_convert.train or fer_convert.soup"
KERAS_TWINS = ("models/fer_edge.keras for fer_edge_int8.tflite",
               "models/fer_edge_fast.keras for fer_edge_fast_int8.tflite")


def keras_file_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be a Keras model file, before loading it (None: it may be one).

    Checks that it exists, is named .keras (or a legacy .h5, left to Keras) and, for .keras,
    that it is a zip archive.
    """
    path = Path(path)
    if not path.is_file():
        return f"model {path} not found; {REMEDY}"
    if path.suffix == ".tflite":
        return (f"{path} is a TFLite model, and this needs the Keras model it was quantized from "
                f"(for the bundled ones: {', '.join(KERAS_TWINS)})")
    if path.suffix not in (".keras", ".h5"):
        return f"{path} is not a .keras file; {REMEDY}"
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        return f"{path} is not a Keras archive (a .keras file is a zip that Keras writes); {REMEDY}"
    return None


def load_keras_model(path: str | Path) -> Any:
    """The ``keras.Model`` saved in ``path``.

    Raises ModelError (fer_edge.errors) naming the file when it is missing, not a Keras archive,
    or a file Keras cannot read (a layer it does not know, a damaged archive).
    """
    problem = keras_file_problem(path)
    if problem:
        raise ModelError(problem)
    import keras

    try:
        model = keras.models.load_model(path)
    except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelError(f"cannot read {path} as a Keras model ({exc}); {REMEDY}") from None
    problem = network_problem(model)
    if problem:
        raise ModelError(f"{path} {problem}; {REMEDY}")
    return model


def network_problem(model: Any) -> str | None:
    """How ``model`` differs from a fer-edge network (None: it does not), as the tools use it:
    raw 48x48 grayscale faces in (N, 48, 48, 1), one score per label out (N, 7), the last dense
    layer named "logits" (the temperature is folded into it, convert.model.with_temperature)."""
    if tuple(model.input_shape[1:]) != (SIDE, SIDE, 1):
        return (f"takes inputs of shape {tuple(model.input_shape)}, where fer-edge networks take "
                f"(None, {SIDE}, {SIDE}, 1) grayscale faces")
    if tuple(model.output_shape[1:]) != (len(LABELS),):
        return (f"gives outputs of shape {tuple(model.output_shape)}, where fer-edge networks give "
                f"one score per label (None, {len(LABELS)})")
    if "logits" not in {layer.name for layer in model.layers}:
        return "has no dense layer named 'logits' before its softmax, as fer-edge networks do"
    return None
