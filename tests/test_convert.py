"""Host-side pipeline: data loading (three forms, bad data), and a one-epoch train → int8 run."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from fer_convert.data import LABELS, DataError, Split, load
from support.fer2013 import usages_for, write_csv

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]


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


def test_a_split_scored_by_the_ferplus_majority_keeps_the_faces_that_have_one(tmp_path, sample):
    images, labels = sample[0][:4], np.zeros(4, np.uint8)  # FER2013: all angry
    votes = np.zeros((4, 10), np.uint8)
    votes[0, 1] = 9  # happiness
    votes[1, 0] = 6  # neutral
    votes[2, 7] = 8  # contempt: no FER2013 class
    votes[3, [0, 3]] = 5  # neutral and sadness tie: no majority
    np.savez(tmp_path / "f.npz", images=images, labels=labels, usage=np.full(4, 1, np.uint8),
             ferplus_votes=votes)
    split = load(tmp_path / "f.npz", "PublicTest")
    assert split.scored_by("fer") is split
    scored = split.scored_by("ferplus")
    assert [LABELS[i] for i in scored.labels] == ["happy", "neutral"]
    assert np.array_equal(scored.images, images[:2])
    with pytest.raises(DataError, match="FER\\+ labels need fer2013.npz"):
        Split("PublicTest", images, labels).scored_by("ferplus")  # from a csv: no votes


def test_extra_faces_join_a_split_with_their_labels_as_votes(sample):
    images, labels = sample[0][:3], np.array([0, 3, 6], np.uint8)
    soft = np.full((3, 7), 1 / 7, np.float32)
    base = Split("Training", images, labels, soft, np.array([0, -1, 6], np.int8))
    extra = Split("Training", images[:2], np.array([4, 5], np.uint8))  # an npz without votes
    joined = base.joined(extra, repeat=3)
    assert len(joined) == 9 and list(joined.labels[3:]) == [4, 5] * 3
    assert np.allclose(joined.soft_labels[3:], np.eye(7)[[4, 5] * 3])
    assert list(joined.ferplus_majority[3:]) == [4, 5] * 3
    assert Split("Training", images, labels).joined(extra).soft_labels is None


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


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    faces = {"images": np.zeros((4, 48, 48), np.uint8), "labels": np.array([0, 3, 6, 2]),
             "usage": np.zeros(4, np.uint8)}
    np.savez(path, **{name: value for name, value in {**faces, **arrays}.items() if value is not None})
    return path


@pytest.mark.parametrize("arrays, message", [
    ({"usage": None}, "no usage array; expected images (N, 48, 48) uint8, labels (N,) 0..6 and usage"),
    ({"labels": np.array([0, 3, 13, 2])}, "labels run from 0 to 13, expected 0..6 (angry, disgust"),
    ({"images": np.zeros((4, 48, 48), np.float32)}, "images are float32, expected uint8 grey levels"),
    ({"images": np.zeros((4, 48, 48, 3), np.uint8)},
     "images have shape (4, 48, 48, 3), expected (N, 48, 48)"),
    ({"labels": np.array([0, 3, 6])},
     "4 images, 3 labels and 4 usage entries; expected one of each per face"),
])
def test_bad_npz_names_the_file_and_the_problem(tmp_path, arrays, message):
    path = _npz(tmp_path / "faces.npz", **arrays)
    with pytest.raises(DataError) as error:
        load(path, "Training")
    assert message in str(error.value) and str(path) in str(error.value)


def test_a_file_named_npz_that_is_not_one(tmp_path):
    path = tmp_path / "faces.npz"
    path.write_text("emotion,pixels,Usage\n")
    with pytest.raises(DataError, match=r"faces\.npz: not a \.npz archive \(numpy\.savez writes a zip\)"):
        load(path, "Training")
    assert len(load(_npz(path), "Training")) == 4


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


def test_one_epoch_train_quantize_and_run_int8(tmp_path, sample, capsys):
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
    assert train.main(["--data", str(csv), "--out", str(run), "--epochs", "1"]) == 2
    assert "holds a run already; pass --resume" in capsys.readouterr().err


def test_distillation_blends_the_teachers_into_the_targets(tmp_path, sample):
    """--teacher, repeated, scores the training faces once per teacher (cached in the run) and
    blends the teachers' mean into the targets."""
    import keras
    from fer_convert import train
    from fer_convert.evaluate import predict_keras
    from fer_convert.model import TTA
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
    each = [predict_keras(t, training.images, TTA()) for t in teachers]
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
