"""Host-side pipeline: data loading (three forms, bad data), and a one-epoch train → int8 run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from fer_convert.data import LABELS, DataError, load

SAMPLE = Path(__file__).parent / "data" / "fer2013_privatetest_sample.npz"

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]



@pytest.fixture(scope="module")
def sample():
    data = np.load(SAMPLE)
    return data["images"], data["labels"]


def write_csv(path: Path, images, labels, usages) -> Path:
    with path.open("w") as handle:
        handle.write("emotion,pixels,Usage\n")
        for image, label, usage in zip(images, labels, usages, strict=False):
            handle.write(f"{label},{' '.join(map(str, image.ravel()))},{usage}\n")
    return path


def usages_for(count: int) -> list[str]:
    """60% Training, 20% PublicTest, 20% PrivateTest, interleaved so each split has every class."""
    return [("Training", "Training", "Training", "PublicTest", "PrivateTest")[i % 5] for i in range(count)]


def test_csv_and_folders_load_the_same_faces(tmp_path, sample):
    images, labels = sample[0][:60], sample[1][:60]
    csv = write_csv(tmp_path / "fer2013.csv", images, labels, usages_for(60))
    for i, (image, label) in enumerate(zip(images, labels, strict=False)):
        usage = usages_for(60)[i]
        folder = tmp_path / "folders" / ("train" if usage == "Training" else "test") / LABELS[label]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{usage}_{i}.png"), image)
    for split in ("Training", "PublicTest", "PrivateTest"):
        from_csv, from_folders = load(csv, split), load(tmp_path / "folders", split)
        assert len(from_csv) == len(from_folders) == usages_for(60).count(split)
        order = np.lexsort((from_csv.images.reshape(len(from_csv), -1).sum(1), from_csv.labels))
        order_f = np.lexsort((from_folders.images.reshape(len(from_folders), -1).sum(1), from_folders.labels))
        assert np.array_equal(from_csv.images[order], from_folders.images[order_f])  # PNG is lossless
        assert np.array_equal(from_csv.labels[order], from_folders.labels[order_f])


def test_npz_carries_ferplus_soft_labels(tmp_path, sample):
    images, labels = sample[0][:10], sample[1][:10]
    votes = np.zeros((10, 10), np.uint8)
    votes[:, 1] = 8  # FER+ "happiness"
    votes[:, 9] = 2  # "not a face" votes are left out
    np.savez(tmp_path / "f.npz", images=images, labels=labels, usage=np.full(10, 2, np.uint8),
             ferplus_votes=votes)
    split = load(tmp_path / "f.npz", "test")
    assert split.name == "PrivateTest" and len(split) == 10
    assert np.allclose(split.soft_labels[:, LABELS.index("happy")], 1.0)


@pytest.mark.parametrize("content, message", [
    ("emotion,pixels\n0,1 2 3\n", "missing column(s) Usage"),
    ("emotion,pixels,Usage\n0,1 2 3,Training\n", "pixels has 3 values, expected 2304"),
    ("emotion,pixels,Usage\n9," + " ".join(["0"] * 2304) + ",Training\n", "emotion must be 0..6"),
    ("emotion,pixels,Usage\n0," + " ".join(["0"] * 2304) + ",PublicTest\n", "split Training is empty"),
])
def test_bad_csv_names_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "fer2013.csv"
    path.write_text(content)
    with pytest.raises(DataError) as error:
        load(path, "Training")
    assert message in str(error.value) and str(path) in str(error.value)


def test_unknown_class_folder_and_empty_split(tmp_path, sample):
    (tmp_path / "train" / "happy").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "train" / "happy" / "a.png"), sample[0][0])
    (tmp_path / "train" / "contempt").mkdir()
    with pytest.raises(DataError, match="unknown class folder 'contempt'"):
        load(tmp_path, "Training")
    (tmp_path / "train" / "contempt").rmdir()
    assert len(load(tmp_path, "Training")) == 1
    (tmp_path / "test" / "sad").mkdir(parents=True)
    with pytest.raises(DataError, match="split PrivateTest is empty"):
        load(tmp_path, "PrivateTest")


def test_missing_data_and_unknown_split(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load(tmp_path / "nothing.csv", "Training")
    with pytest.raises(DataError, match="unknown split 'holdout'"):
        load(tmp_path, "holdout")


def test_one_epoch_train_quantize_and_run_int8(tmp_path, sample):
    """The whole host-side pipeline on 500 faces: train, quantize to int8, classify on-device style."""
    from fer_convert import quantize, train
    from fer_edge.classifier import TFLiteExpressionClassifier

    images, labels = sample
    csv = write_csv(tmp_path / "fer2013.csv", images, labels, usages_for(len(labels)))
    run = tmp_path / "run"
    assert train.main(["--data", str(csv), "--out", str(run), "--epochs", "1", "--batch-size", "64",
                       "--widths", "8", "16", "16", "32", "--threads", "2"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_run"] == 1 and (run / "training_curve.png").stat().st_size > 0
    out = tmp_path / "model_int8.tflite"
    # an untrained model's accuracy is noise, so the drop gate is opened; test_quantize_gate covers it
    assert quantize.main([str(run / "model.keras"), "--data", str(csv), "--out", str(out),
                          "--max-drop", "100", "--calibration-faces", "70"]) == 0
    assert quantize.float_ops(out) == []
    classifier = TFLiteExpressionClassifier(out, labels_path=Path("models/labels.txt"))
    probabilities = classifier.probabilities(images[0])
    assert probabilities.shape == (7,) and abs(probabilities.sum() - 1) < 1e-6

    # the resume option continues the same run for one more epoch
    assert train.main(["--data", str(csv), "--out", str(run), "--epochs", "2", "--batch-size", "64",
                       "--widths", "8", "16", "16", "32", "--threads", "2", "--resume"]) == 0
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 2
    with pytest.raises(SystemExit, match="holds a run already; pass --resume"):
        train.main(["--data", str(csv), "--out", str(run), "--epochs", "1"])


def test_distillation_blends_the_teachers_into_the_targets(tmp_path, sample):
    """--teacher, repeated, scores the training faces once per teacher (cached in the run) and
    blends the teachers' mean into the targets."""
    import keras
    from fer_convert import train
    from fer_convert.evaluate import predict_keras
    from fer_convert.teachers import distilled

    hard = np.eye(7, dtype=np.float32)[[3, 0]]
    teacher = np.array([[0.1, 0, 0, 0.6, 0.1, 0, 0.2], [0.2, 0.1, 0.5, 0, 0, 0.2, 0]], np.float32)
    blended = distilled(hard, teacher, 0.7)
    np.testing.assert_allclose(blended.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(blended[1], 0.3 * hard[1] + 0.7 * teacher[1], atol=1e-6)

    images, labels = sample
    csv = write_csv(tmp_path / "fer2013.csv", images, labels, usages_for(len(labels)))
    run = tmp_path / "run"
    teachers = ["models/fer_edge.keras", "models/fer_edge_fast.keras"]
    # the fast model's recipe: a stride-2 stem, then the stages at 24x24 and below
    assert train.main(["--data", str(csv), "--out", str(run), "--epochs", "1", "--batch-size", "64",
                       "--stem", "8", "--widths", "16", "16", "32", "--threads", "2",
                       "--teacher", teachers[0], "--teacher", teachers[1], "--teacher-weight", "0.5"]) == 0
    scores = np.load(run / "teacher_scores.npy")
    training = load(csv, "Training")
    assert scores.shape == (len(training), 7)
    each = [predict_keras(t, training.images, mirror_average=True) for t in teachers]
    np.testing.assert_allclose(scores, np.mean(each, axis=0), atol=1e-5)
    # the shipped models as teachers: they agree with most of these labels, and are no constant
    assert (scores.argmax(axis=1) == training.labels).mean() > 0.5
    assert len(set(scores.argmax(axis=1))) >= 5
    assert [t["path"] for t in json.loads((run / "teacher_scores.json").read_text())["teachers"]] == teachers
    settings = json.loads((run / "summary.json").read_text())["settings"]
    assert settings["teacher"] == teachers and settings["teacher_weight"] == 0.5
    model = keras.models.load_model(run / "model.keras")
    assert model.get_layer("stem_conv").output.shape[1:] == (24, 24, 8)
    assert model.get_layer("stage0_conv0").output.shape[1:] == (24, 24, 16)


def test_teacher_scores_are_rescored_when_the_teachers_change(tmp_path, sample):
    from fer_convert.data import Split
    from fer_convert.teachers import teacher_probabilities

    split = Split("Training", sample[0][:20], sample[1][:20])
    cache = tmp_path / "teacher_scores.npy"
    one = teacher_probabilities([Path("models/fer_edge_fast.keras")], split, cache)
    np.save(cache, np.zeros_like(one))  # a stale cache is read back while the key matches
    assert not teacher_probabilities([Path("models/fer_edge_fast.keras")], split, cache).any()
    both = teacher_probabilities([Path("models/fer_edge_fast.keras"), Path("models/fer_edge.keras")],
                                 split, cache)
    assert both.any() and not np.allclose(both, one)


def test_quantize_gate_refuses_a_large_drop(tmp_path, sample, capsys):
    """A drop beyond --max-drop fails with a clear message and writes nothing."""
    from fer_convert import quantize

    images, labels = sample
    csv = write_csv(tmp_path / "fer2013.csv", images, labels, usages_for(len(labels)))
    out = tmp_path / "never.tflite"
    assert quantize.main(["models/fer_edge.keras", "--data", str(csv), "--out", str(out),
                          "--max-drop", "-100", "--calibration-faces", "70"]) == 1
    assert "points below float" in capsys.readouterr().err and not out.exists()


def test_profile_times_each_stage_of_the_int8_network(tmp_path, capsys):
    """convert.profile cuts the network after each stage and times each int8 prefix."""
    from fer_convert import profile
    from fer_convert.model import build_model

    path = tmp_path / "small.keras"
    build_model((8, 16), stem=4).save(path)
    assert profile.main([str(path), "--number", "5"]) == 0
    out = capsys.readouterr().out
    ends = ["normalize", "stem_relu", "stage0_pool", "stage1_pool", "scores"]
    assert [line.split()[2] for line in out.splitlines()[1:]] == ends
    assert "µs per invoke (int8, 1 thread)" in out.splitlines()[0]
    assert profile.main([str(tmp_path / "missing.keras")]) == 2


# --- the recipe levers: class weights, crops, mixup, weight averaging ---------------------


def test_class_weights_modes():
    from fer_convert.train import class_weights

    labels = np.array([0] * 60 + [1] * 15 + [3] * 25)
    assert class_weights(labels, "none") is None
    for mode, power in (("sqrt", 0.5), ("inverse", 1.0)):
        weights = class_weights(labels, mode)
        assert weights[labels].mean() == pytest.approx(1)
        assert weights[1] / weights[0] == pytest.approx((60 / 15) ** power)


def test_mixup_mixes_targets_with_the_images_lambda():
    """Each face's pixels hold its class index, so one lambda for both means pixel == E[class]."""
    import tensorflow as tf
    from fer_convert.augment import mix, mixup

    classes = np.array([0, 3, 6, 2, 5, 1, 4, 3])
    x = np.broadcast_to(classes[:, None, None, None], (8, 48, 48, 1)).astype(np.float32)
    y = np.eye(7, dtype=np.float32)[classes]
    partner = np.array([1, 0, 3, 2, 5, 4, 7, 6])
    x_mixed, y_mixed = mix(tf.constant(x), tf.constant(y), None, 0.3, tf.constant(partner))
    np.testing.assert_allclose(x_mixed.numpy(), 0.3 * x + 0.7 * x[partner], rtol=1e-6)
    np.testing.assert_allclose(y_mixed.numpy(), 0.3 * y + 0.7 * y[partner], rtol=1e-6)

    blended = 0
    for seed in range(6):
        x_mixed, y_mixed = mixup(tf.constant(x), tf.constant(y), None, alpha=0.4, seed=seed)
        np.testing.assert_allclose(y_mixed.numpy().sum(axis=1), 1, atol=1e-6)
        np.testing.assert_allclose(x_mixed.numpy()[:, 20, 20, 0], y_mixed.numpy() @ np.arange(7), atol=1e-4)
        blended += int(((y_mixed.numpy() > 1e-3).sum(axis=1) == 2).any())
    assert blended >= 3  # lambda is drawn, not stuck at 0 or 1

    # with sample weights the loss is the weighted mixup loss: cross-entropy is linear in the target
    w = np.array([1, 2, 0.5, 1, 3, 1, 1, 0.25], np.float32)
    _, y_mixed, w_mixed = (t.numpy() for t in mix(tf.constant(x), tf.constant(y), tf.constant(w), 0.3,
                                                  tf.constant(partner)))
    np.testing.assert_allclose(y_mixed.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(w_mixed, 0.3 * w + 0.7 * w[partner], rtol=1e-6)
    p = np.random.default_rng(0).dirichlet(np.ones(7), size=8)
    def ce(t):
        return -(t * np.log(p)).sum(axis=1)
    np.testing.assert_allclose(w_mixed * ce(y_mixed), 0.3 * w * ce(y) + 0.7 * w[partner] * ce(y[partner]),
                               rtol=1e-5)


def test_random_crop_is_a_window_resized_back_to_48(sample):
    import tensorflow as tf
    from fer_convert.augment import random_crop

    face = sample[0][0][..., None].astype(np.float32)
    crop = random_crop(tf.constant(face), 40, seed=3).numpy()
    assert crop.shape == (48, 48, 1)
    windows = [tf.image.resize(face[top:top + 40, left:left + 40], (48, 48)).numpy()
               for top in range(9) for left in range(9)]
    assert min(np.abs(w - crop).max() for w in windows) < 1e-3


def test_training_pipeline_with_crops_mixup_and_weights(sample):
    from fer_convert.augment import make_dataset
    from fer_convert.data import Split
    from fer_convert.train import class_weights

    images, labels = sample[0][:64], sample[1][:64]
    y = np.eye(7, dtype=np.float32)[labels]
    ds = make_dataset(Split("Training", images, labels), y, 32, seed=1, augment=True,
                      weights=class_weights(labels, "inverse"), crop=42, mixup_alpha=0.2)
    x, targets, weights = (t.numpy() for t in next(iter(ds)))
    assert x.shape == (32, 48, 48, 1) and targets.shape == (32, 7) and weights.shape == (32,)
    np.testing.assert_allclose(targets.sum(axis=1), 1, atol=1e-5)
    assert (weights > 0).all()


def backup_state(run: Path, flags: list[str], faces: int) -> tuple[list, list, int]:
    """The trained weights, their moving average and the step count that backup/ holds."""
    from fer_convert import train

    model = train.compiled_model(train.parse_args(flags), faces)
    model.optimizer.build(model.trainable_variables)
    model.load_weights(run / "backup" / "latest.weights.h5")
    average = [v.numpy() for v in model.optimizer.variables if v.name.endswith("_average")]
    return ([v.numpy() for v in model.trainable_variables], average,
            int(model.optimizer.iterations.numpy()))


def distance(a: list, b: list) -> float:
    return float(np.sqrt(sum(np.sum((x - y) ** 2) for x, y in zip(a, b, strict=True))))


def test_smoke_run_with_mixup_ema_and_crops_resumes_with_its_average(tmp_path, sample):
    """One epoch with every lever, then --resume: the average is saved, selected and carried on."""
    import keras
    from fer_convert import train

    images, labels = sample
    csv = write_csv(tmp_path / "fer2013.csv", images, labels, usages_for(len(labels)))
    faces = usages_for(len(labels)).count("Training")
    run = tmp_path / "run"
    flags = ["--data", str(csv), "--out", str(run), "--batch-size", "64", "--widths", "8", "16", "16",
             "--threads", "2", "--mixup", "0.2", "--ema", "0.9", "--crop", "44",
             "--class-weights", "inverse"]
    assert train.main([*flags, "--epochs", "1"]) == 0
    raw, average, steps = backup_state(run, [*flags, "--epochs", "1"], faces)
    assert steps == -(-faces // 64) and len(average) == len(raw)
    # validation, best.keras and model.keras see the average; backup/ keeps the trained weights
    saved = [w.numpy() for w in keras.models.load_model(run / "model.keras").trainable_weights]
    assert distance(saved, average) < 1e-6 < distance(raw, average)

    assert train.main([*flags, "--epochs", "2", "--resume"]) == 0
    raw_2, average_2, steps_2 = backup_state(run, [*flags, "--epochs", "2"], faces)
    assert steps_2 == 2 * steps
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 2
    # 0.9 ** 5 steps keeps 59% of the saved average: it moved less than the trained weights did
    # (an average lost on resume would have restarted far from it)
    assert 0 < distance(average_2, average) < distance(raw_2, average)
    settings = json.loads((run / "summary.json").read_text())["settings"]
    assert (settings["mixup"], settings["ema"], settings["crop"]) == (0.2, 0.9, 44)


@pytest.mark.parametrize("flag, value, message", [
    ("--ema", "1", "--ema must be in [0, 1)"),
    ("--mixup", "-0.1", "--mixup must be >= 0"),
    ("--crop", "48", "--crop must be 24..47 px"),
])
def test_out_of_range_levers_are_refused(tmp_path, flag, value, message):
    from fer_convert import train

    with pytest.raises(SystemExit, match=re.escape(message)):
        train.main(["--data", str(SAMPLE), "--out", str(tmp_path / "run"), flag, value])


# --- test-time averaging and the temperature inside the int8 graph ------------------------


def test_crop_average_graph_matches_averaging_the_crops_by_hand(tmp_path, sample):
    import keras
    import tensorflow as tf
    from fer_convert.calibrate import averaged_probabilities
    from fer_convert.model import (
        build_model,
        crop_windows,
        view_logits,
        with_mirror_average,
        with_temperature,
        with_test_time_average,
    )
    from fer_convert.quantize import float_ops, to_int8
    from fer_edge.classifier import TFLiteExpressionClassifier

    keras.utils.set_random_seed(7)
    model = build_model((8, 16), stem=4)
    faces = sample[0][:16]
    x = faces[..., None].astype(np.float32)
    views = [x]
    for top, left in ((2, 2), (0, 0), (0, 4), (4, 0)):  # centre, top-left, top-right, bottom-left
        views.append(tf.image.resize(x[:, top:top + 44, left:left + 44], (48, 48)).numpy())
    by_hand = [model.predict(v[:, :, ::-1] if mirrored else v, verbose=0)
               for v in views for mirrored in (False, True)]
    graph = with_test_time_average(model, crops=5, side=44)
    np.testing.assert_allclose(graph.predict(x, verbose=0), np.mean(by_hand, axis=0), atol=1e-6)
    np.testing.assert_allclose(graph.predict(x[:1], verbose=0), np.mean(by_hand, axis=0)[:1], atol=1e-6)
    # today's export: the face and its mirror; and no averaging at all
    np.testing.assert_allclose(with_mirror_average(model).predict(x, verbose=0),
                               np.mean(by_hand[:2], axis=0), atol=1e-6)
    assert with_test_time_average(model, crops=1, mirror=False) is model

    # the temperature divides the logits of every view before its softmax
    hot = with_test_time_average(with_temperature(model, 2.5), crops=5, side=44)
    expected = averaged_probabilities(view_logits(model, faces, crops=5, side=44), 2.5)
    np.testing.assert_allclose(hot.predict(x, verbose=0), expected, atol=1e-6)
    assert len(hot.get_weights()) == len(model.get_weights())  # folded in: no new weight

    # the int8 file keeps the device contract with no float op, and agrees with the float graph
    out = tmp_path / "tta.tflite"
    out.write_bytes(to_int8(hot, sample[0][:40]))
    assert float_ops(out) == []
    classifier = TFLiteExpressionClassifier(out, labels_path=Path("models/labels.txt"))
    int8 = np.stack([classifier.probabilities(face) for face in faces])
    assert np.abs(int8 - expected).max() < 0.05 and classifier.mirror_averaged

    with pytest.raises(ValueError, match="crops must be 1..6"):
        crop_windows(7, 44)
    with pytest.raises(ValueError, match="crop side must be 1..47"):
        crop_windows(2, 48)


def test_quantize_fits_the_temperature_and_bakes_in_the_crops(tmp_path, sample, capsys):
    from fer_convert import quantize

    images, labels = sample
    csv = write_csv(tmp_path / "fer2013.csv", images, labels, usages_for(len(labels)))
    out = tmp_path / "fast_tta.tflite"
    assert quantize.main(["models/fer_edge_fast.keras", "--data", str(csv), "--out", str(out),
                          "--no-mirror-average", "--tta-crops", "2", "--temperature", "fit",
                          "--calibration-faces", "70", "--max-drop", "5"]) == 0
    printed = capsys.readouterr().out
    assert "fitted on PublicTest: NLL" in printed and quantize.float_ops(out) == []
    before, after = (float(v) for v in printed.split("NLL ")[1].split(",")[0].split(" -> "))
    assert after <= before
    assert quantize.main(["models/fer_edge_fast.keras", "--data", str(csv), "--out", str(out),
                          "--tta-crops", "9"]) == 2
    assert "--tta-crops/--tta-side: crops must be 1..6" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        quantize.main(["models/fer_edge_fast.keras", "--data", str(csv), "--temperature", "-1"])


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
    assert result["ferplus"] == {"faces": int(kept.sum()), "excluded": int((~kept).sum()),
                                 "accuracy": round(float(np.mean(predicted[kept] == majority[kept])), 4)}
    assert 0 < result["ece"] < 0.2 and 0.5 < result["nll"] < 2 and png.stat().st_size > 0
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
