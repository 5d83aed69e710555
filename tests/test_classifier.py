"""The LiteRT classifier: the input contract, bad model files, and the probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fer_edge.classifier import (
    DEFAULT_LABELS,
    FAST_MODEL_NAME,
    TFLiteExpressionClassifier,
    default_model_path,
    dequantize,
    resolve_model_path,
)
from fer_edge.errors import ModelError

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def classifier() -> TFLiteExpressionClassifier:
    return TFLiteExpressionClassifier()


def test_bundled_model_is_found_and_meets_the_contract(classifier):
    assert classifier.model_path == default_model_path()
    assert classifier.labels == DEFAULT_LABELS


def test_probabilities_sum_to_one_and_name_the_top_label(classifier):
    faces = np.load(DATA / "fer2013_privatetest_sample.npz")["images"][:20]
    for face in faces:
        probabilities = classifier.probabilities(face)
        assert probabilities.shape == (7,) and probabilities.min() >= 0
        assert abs(float(probabilities.sum()) - 1) < 1e-6
        expression = classifier.to_expression(probabilities)
        assert expression.label == DEFAULT_LABELS[int(np.argmax(probabilities))]
        assert expression.confidence == max(expression.scores.values())


def test_a_bundled_model_is_named_by_its_file_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # wherever the daemon runs from
    fast = TFLiteExpressionClassifier(FAST_MODEL_NAME)
    assert fast.model_path == default_model_path().with_name(FAST_MODEL_NAME) and fast.model_path.is_file()
    assert fast.labels == DEFAULT_LABELS
    assert resolve_model_path(None) == resolve_model_path("") == default_model_path()
    # a file of that name where the path points wins over the bundled one
    (tmp_path / FAST_MODEL_NAME).write_bytes(b"x")
    assert resolve_model_path(FAST_MODEL_NAME) == Path(FAST_MODEL_NAME)


def test_dequantize_widens_before_subtracting():
    detail = {"quantization": (0.5, 200)}
    assert dequantize(np.array([0, 255], np.uint8), detail).tolist() == [-100.0, 27.5]
    assert dequantize(np.array([1.5], np.float32), {"quantization": (0.0, 0)}).tolist() == [1.5]


def test_missing_model_names_the_file_and_the_remedy(tmp_path):
    with pytest.raises(ModelError, match=r"missing\.tflite not found; pass --model PATH .* or the name of "
                                         r"a bundled one \(fer_edge_int8\.tflite, fer_edge_fast_int8"):
        TFLiteExpressionClassifier(tmp_path / "missing.tflite")


def test_corrupt_model_is_refused(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"this is not a flatbuffer" * 10)
    with pytest.raises(ModelError, match="is not a valid TFLite model"):
        TFLiteExpressionClassifier(bad)


def test_float_input_model_breaks_the_contract():
    with pytest.raises(ModelError, match=r"expected one uint8\[1, 48, 48, 1\] input .* found float32"):
        TFLiteExpressionClassifier(DATA / "float_input.tflite")


def test_labels_must_match_the_outputs(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("happy\nsad\n")
    with pytest.raises(ModelError, match="expected one output of 2 scores"):
        TFLiteExpressionClassifier(labels_path=labels)
