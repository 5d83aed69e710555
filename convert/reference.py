"""The float references ``fer-convert compare`` measures the int8 model against (TensorFlow).

``fer-edge bench`` lives in ``edge/`` and never imports TensorFlow; ``fer-convert compare`` calls
these two helpers for ``--compare`` (a float TFLite model) and ``--baseline seed`` (Keras predict
per face).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .model import TTA


def float_tflite(keras_path: str | Path, out_dir: str | Path, int8_path: str | Path) -> tuple[Path, TTA]:
    """Convert the float Keras model to a float32 .tflite computing what ``int8_path`` computes.

    The test-time views and temperature come from the int8 file's ``fer_edge_views`` entry
    (``fer_convert.metadata``); a file made before it records them is taken to average the
    face with its mirror where its graph flips the face (the default model) and to run the
    plain network otherwise. Returns the float file's path and the views it averages.
    """
    import keras
    import tensorflow as tf
    from fer_edge.classifier import TFLiteExpressionClassifier

    from .keras_file import load_keras_model
    from .metadata import read_views
    from .model import TTA, with_temperature, with_test_time_average
    from .quantize import tflite_bytes

    recorded = read_views(int8_path)
    tta, temperature = recorded or (TTA(mirror=TFLiteExpressionClassifier(int8_path).mirror_averaged), 1.0)
    model = with_test_time_average(with_temperature(load_keras_model(keras_path), temperature), tta)
    # A cast in front keeps the daemon's input contract (uint8 [1, 48, 48, 1]), so the comparison
    # runs the float model through the same TFLiteExpressionClassifier as the int8 one.
    pixels = keras.Input((48, 48, 1), batch_size=1, dtype="uint8", name="pixels")
    wrapped = keras.Model(pixels, model(keras.ops.cast(pixels, "float32")))
    out = Path(out_dir) / "fer_edge_float.tflite"
    out.write_bytes(tflite_bytes(tf.lite.TFLiteConverter.from_keras_model(wrapped)))  # stdout stays clean
    return out, tta


def keras_predictor(keras_path: str | Path) -> Callable[[np.ndarray], np.ndarray]:
    """What the original projects ran per face: ``model.predict`` on one 48x48 crop."""
    from .keras_file import load_keras_model

    model = load_keras_model(keras_path)

    def predict(face: np.ndarray) -> np.ndarray:
        # raw 0..255 pixels: this model normalises inside (the originals divided by 255 first)
        return model.predict(face.reshape(1, 48, 48, 1).astype(np.float32), verbose=0)[0]

    return predict
