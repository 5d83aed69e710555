"""Calibration: temperature, expected calibration error, reliability diagram, FER+ majority labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fer_convert.data import LABELS, load

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]


# --- calibration: temperature, ECE, reliability, FER+ majority ----------------------------


def top_scores(confidences: list[float], top_class: int = 0) -> np.ndarray:
    """7-class scores whose top class is ``top_class`` with the given confidences."""
    confidences = np.asarray(confidences)[:, None]
    scores = np.repeat((1 - confidences) / 6, 7, axis=1)
    scores[:, top_class] = confidences[:, 0]
    return scores


def test_expected_calibration_error_on_known_inputs():
    from fer_convert.calibrate import expected_calibration_error, reliability

    # calibrated: 8 of 10 right at 0.8, 3 of 5 at 0.6, 1 of 4 at 0.25
    scores = top_scores([0.8] * 10 + [0.6] * 5 + [0.25] * 4)
    labels = np.array([0] * 8 + [1] * 2 + [0] * 3 + [2] * 2 + [0] + [3] * 3)
    assert expected_calibration_error(scores, labels) == pytest.approx(0, abs=1e-12)
    # by hand: bin (13/15, 14/15] holds 0.9 right and 0.9 wrong, |0.5 - 0.9| = 0.4, weight 2/4;
    # bin (7/15, 8/15] holds 0.5 right twice, |1 - 0.5| = 0.5, weight 2/4: ECE 0.2 + 0.25
    scores, labels = top_scores([0.9, 0.9, 0.5, 0.5]), np.array([0, 4, 0, 0])
    assert expected_calibration_error(scores, labels) == pytest.approx(0.45)
    bins = reliability(scores, labels)
    assert len(bins.counts) == 15 and bins.counts[13] == 2 and bins.counts[7] == 2
    assert bins.accuracy[13] == pytest.approx(0.5) and bins.confidence[7] == pytest.approx(0.5)


def test_temperature_fit_recovers_a_known_temperature():
    """Labels drawn from known probabilities; logits scaled by s need T = s to give them back."""
    from fer_convert.calibrate import averaged_probabilities, fit_temperature

    rng = np.random.default_rng(0)
    true = rng.normal(0, 2, (20000, 7))
    jitter = rng.normal(0, 0.5, (20000, 7))
    # one view (Guo et al.'s case), and a face with its "mirror" averaged as the int8 graph does
    for views in (true[None], np.stack([true + jitter, true - jitter])):
        cumulative = np.cumsum(averaged_probabilities(views), axis=1)
        labels = np.minimum((rng.random((20000, 1)) > cumulative).sum(axis=1), 6)
        for scale in (2.5, 0.5):  # over-confident, under-confident
            assert fit_temperature(scale * views, labels) == pytest.approx(scale, rel=0.05)


def test_ferplus_majority_labels(tmp_path, sample):
    """Barsoum et al.'s majority: single votes dropped, more than half of the rest, 7 classes only."""
    from fer_convert.data import ferplus_majority

    # columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
    votes = np.array([
        [0, 8, 0, 0, 0, 0, 0, 0, 0, 2],  # happy
        [0, 0, 3, 0, 1, 1, 4, 0, 1, 0],  # fear: 4 of 10, but 4 of 7 once single votes are dropped
        [5, 0, 0, 5, 0, 0, 0, 0, 0, 0],  # a tie: no majority
        [0, 0, 0, 0, 0, 0, 0, 6, 4, 0],  # contempt: no FER2013 class
        [2, 0, 0, 0, 0, 0, 0, 0, 2, 6],  # not a face
        [3, 0, 0, 0, 6, 0, 0, 0, 1, 0],  # angry
    ], np.uint8)
    expected = [LABELS.index("happy"), LABELS.index("fear"), -1, -1, -1, LABELS.index("angry")]
    assert ferplus_majority(votes).tolist() == expected

    np.savez(tmp_path / "f.npz", images=sample[0][:6], labels=sample[1][:6],
             usage=np.full(6, 1, np.uint8), ferplus_votes=votes)
    split = load(tmp_path / "f.npz", "PublicTest")
    assert split.ferplus_majority.tolist() == expected
    assert split.subset(np.array([5, 0])).ferplus_majority.tolist() == [expected[5], expected[0]]


def test_evaluate_reports_calibration_and_ferplus_accuracy(tmp_path, sample, capsys):
    from fer_convert import evaluate
    from fer_convert.calibrate import expected_calibration_error, negative_log_likelihood
    from fer_convert.data import ferplus_majority

    images, labels = sample
    # FER+ votes that agree with the label on a third of the faces, say contempt on a third
    # (left out) and name another class on the rest
    votes = np.zeros((len(labels), 10), np.uint8)
    columns = np.array([4, 5, 6, 1, 3, 2, 0])
    kind = np.arange(len(labels)) % 3
    votes[kind == 0, columns[labels[kind == 0]]] = 9
    votes[kind == 1, 7] = 9
    votes[kind == 2, columns[(labels[kind == 2] + 1) % 7]] = 9
    votes[:, 9] = 1
    data = tmp_path / "f.npz"
    np.savez(data, images=images, labels=labels, usage=np.full(len(labels), 2, np.uint8),
             ferplus_votes=votes)
    report, png = tmp_path / "report.json", tmp_path / "reliability.png"
    assert evaluate.main(["models/fer_edge_fast_int8.tflite", "--data", str(data), "--json", str(report),
                          "--reliability", str(png)]) == 0
    result = json.loads(report.read_text())
    predicted = evaluate.predict_tflite("models/fer_edge_fast_int8.tflite", images).argmax(axis=1)
    majority = ferplus_majority(votes)
    kept = majority >= 0
    scores = evaluate.predict_tflite("models/fer_edge_fast_int8.tflite", images)[kept]
    assert result["ferplus"] == {"faces": int(kept.sum()), "excluded": int((~kept).sum()),
                                 "accuracy": round(float(np.mean(predicted[kept] == majority[kept])), 4),
                                 "ece": round(expected_calibration_error(scores, majority[kept]), 4),
                                 "nll": round(negative_log_likelihood(scores, majority[kept]), 4)}
    # (these votes are made up: the calibration figures are only checked for being figures)
    assert 0 < result["ece"] < 1 and result["nll"] > 0 and png.stat().st_size > 0
    assert "calibration: ECE" in capsys.readouterr().out

    # the averaging and temperature of a .tflite file are set when it is made, not here
    assert evaluate.main(["models/fer_edge_fast_int8.tflite", "--data", str(data), "--tta-crops", "5"]) == 2
    assert "apply to Keras models" in capsys.readouterr().err
    # Keras models: the float model averaged over 2 crops and mirrors, softened by a temperature
    assert evaluate.main(["models/fer_edge_fast.keras", "--data", str(data), "--mirror-average",
                          "--tta-crops", "2", "--temperature", "1.5", "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["model"].endswith("(mirror-averaged) (2 crops of 44 px) (T = 1.5)")
    assert result["accuracy"] > 0.5


@pytest.mark.tensorflow
def test_evaluate_scores_an_ensemble_as_the_mean_of_its_models(tmp_path, sample, capsys):
    """Several models: the report is that of their mean scores, each model averaged alike."""
    from fer_convert import evaluate
    from fer_convert.model import TTA

    images, labels = sample
    data = tmp_path / "f.npz"
    np.savez(data, images=images, labels=labels, usage=np.full(len(labels), 2, np.uint8))
    report = tmp_path / "report.json"
    models = ["models/fer_edge_fast.keras", "models/fer_edge.keras"]
    assert evaluate.main([*models, "--data", str(data), "--mirror-average", "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    mean = np.mean([evaluate.predict_keras(m, images, TTA()) for m in models], axis=0)
    assert result["model"] == " + ".join(models) + " (mirror-averaged)"
    assert result["accuracy"] == round(float(np.mean(mean.argmax(axis=1) == labels)), 4)

    # a missing member is named; options that would reach only the Keras members are refused
    assert evaluate.main([models[0], "runs/none.keras", "--data", str(data)]) == 2
    assert "model runs/none.keras not found" in capsys.readouterr().err
    assert evaluate.main([models[0], "models/fer_edge_fast_int8.tflite", "--data", str(data),
                          "--mirror-average"]) == 2
    assert "evaluate .tflite and .keras files separately" in capsys.readouterr().err
