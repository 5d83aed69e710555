"""The recipe's levers (class weights, crops, mixup, weight averaging); test-time averaging in int8."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from support.fer2013 import SAMPLE, usages_for, write_csv

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]


# --- the recipe levers: class weights, crops, mixup, weight averaging ---------------------


def test_class_weights_modes():
    from fer_convert.targets import class_weights

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


def test_training_pipeline_with_crops_camera_mixup_and_weights(sample):
    from fer_convert.augment import make_dataset
    from fer_convert.data import Split
    from fer_convert.targets import class_weights

    images, labels = sample[0][:64], sample[1][:64]
    y = np.eye(7, dtype=np.float32)[labels]
    ds = make_dataset(Split("Training", images, labels), y, 32, seed=1, augment=True,
                      weights=class_weights(labels, "inverse")[labels], crop=42, mixup_alpha=0.2,
                      camera=True)
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
    ("--ema", "1", "argument --ema: expected a number >= 0 and < 1, got '1'"),
    ("--mixup", "-0.1", "argument --mixup: expected a number >= 0, got '-0.1'"),
    ("--teacher-centre-crop", "49", "argument --teacher-centre-crop: expected an integer >= 1 and <= 48"),
    ("--crop", "48", "error: --crop must be 24..47 px, got 48 (0 turns it off)"),
])
def test_out_of_range_levers_are_refused(tmp_path, flag, value, message, capsys):
    from fer_convert import train

    try:
        code = train.main(["--data", str(SAMPLE), "--out", str(tmp_path / "run"), flag, value])
    except SystemExit as exit_:  # argparse's usage error
        code = exit_.code
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# --- test-time averaging and the temperature inside the int8 graph ------------------------


def test_crop_average_graph_matches_averaging_the_crops_by_hand(tmp_path, sample):
    import keras
    import tensorflow as tf
    from fer_convert.calibrate import averaged_probabilities
    from fer_convert.model import (
        ONE_PASS,
        TTA,
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
    graph = with_test_time_average(model, TTA(crops=5, side=44))
    np.testing.assert_allclose(graph.predict(x, verbose=0), np.mean(by_hand, axis=0), atol=1e-6)
    np.testing.assert_allclose(graph.predict(x[:1], verbose=0), np.mean(by_hand, axis=0)[:1], atol=1e-6)
    # today's export: the face and its mirror; and no averaging at all
    np.testing.assert_allclose(with_mirror_average(model).predict(x, verbose=0),
                               np.mean(by_hand[:2], axis=0), atol=1e-6)
    assert with_test_time_average(model, ONE_PASS) is model

    # a centre crop frames the face first: the centre 46 px, resized back to 48, and its mirror
    framed = tf.image.resize(x[:, 1:47, 1:47], (48, 48)).numpy()
    np.testing.assert_allclose(
        with_test_time_average(model, TTA(centre_crop=46)).predict(x, verbose=0),
        np.mean([model.predict(v, verbose=0) for v in (framed, framed[:, :, ::-1])], axis=0), atol=1e-6)

    # the temperature divides the logits of every view before its softmax
    hot = with_test_time_average(with_temperature(model, 2.5), TTA(crops=5, side=44, centre_crop=46))
    expected = averaged_probabilities(view_logits(model, faces, TTA(crops=5, side=44, centre_crop=46)), 2.5)
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
    with pytest.raises(ValueError, match="centre crop must be 1..48"):
        TTA(centre_crop=49)


def test_quantize_fits_the_temperature_and_bakes_in_the_crops(tmp_path, sample, capsys):
    from fer_convert import quantize
    from fer_convert.metadata import read_views
    from fer_convert.model import TTA

    images, labels = sample
    csv = write_csv(tmp_path / "fer2013.csv", images, labels, usages_for(len(labels)))
    out = tmp_path / "fast_tta.tflite"
    assert quantize.main(["models/fer_edge_fast.keras", "--data", str(csv), "--out", str(out),
                          "--no-mirror-average", "--tta-crops", "2", "--centre-crop", "46",
                          "--temperature", "fit",
                          "--calibration-faces", "70", "--max-drop", "5"]) == 0
    printed = capsys.readouterr().out
    assert "fitted on PublicTest: NLL" in printed and quantize.float_ops(out) == []
    before, after = (float(v) for v in printed.split("NLL ")[1].split(",")[0].split(" -> "))
    assert after <= before
    # the file records its views and temperature, for the float twin fer_convert.compare builds
    tta, temperature = read_views(out)
    assert tta == TTA(crops=2, mirror=False, centre_crop=46) and 0 < temperature != 1
    assert quantize.main(["models/fer_edge_fast.keras", "--data", str(csv), "--out", str(out),
                          "--tta-crops", "9"]) == 2
    assert "error: crops must be 1..6" in capsys.readouterr().err
    assert quantize.main(["models/fer_edge_fast.keras", "--data", str(csv), "--out", str(out),
                          "--centre-crop", "0"]) == 2
    assert "the centre crop must be 1..48 px, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        quantize.main(["models/fer_edge_fast.keras", "--data", str(csv), "--out", str(out),
                       "--temperature", "-1"])


def test_mixup_of_bfloat16_images_keeps_float32_targets_and_weights():
    """--bf16 makes the images bfloat16 while targets and weights stay float32 (a crash before)."""
    import tensorflow as tf
    from fer_convert.augment import mix

    x = tf.cast(tf.fill((4, 48, 48, 1), 100.0), tf.bfloat16)
    y = tf.constant(np.eye(7, dtype=np.float32)[[0, 1, 2, 3]])
    w = tf.constant([1.0, 2.0, 1.0, 0.5])
    x_mixed, y_mixed, w_mixed = mix(x, y, w, tf.constant(0.25), tf.constant([1, 0, 3, 2]))
    assert (x_mixed.dtype, y_mixed.dtype, w_mixed.dtype) == (tf.bfloat16, tf.float32, tf.float32)
    np.testing.assert_allclose(y_mixed.numpy().sum(axis=1), 1, atol=1e-6)


def test_teacher_scores_follow_the_teachers_centre_crop(tmp_path, sample):
    """--teacher-centre-crop scores the views the int8 graph would run; the cache knows the difference."""
    from fer_convert.data import load
    from fer_convert.evaluate import predict_keras
    from fer_convert.model import TTA
    from fer_convert.teachers import teacher_probabilities

    images, labels = sample
    data = tmp_path / "f.npz"
    np.savez(data, images=images[:120], labels=labels[:120], usage=np.zeros(120, np.uint8))
    split, teacher, cache = load(data, "Training"), [Path("models/fer_edge_fast.keras")], tmp_path / "t.npy"
    whole = teacher_probabilities(teacher, split, cache)
    framed = teacher_probabilities(teacher, split, cache, centre_crop=47)
    expected = predict_keras(teacher[0], split.images, TTA(centre_crop=47))
    np.testing.assert_allclose(framed, expected, atol=1e-6)
    assert np.abs(framed - whole).max() > 1e-3  # recomputed, not the cached whole-face scores
    assert json.loads(cache.with_suffix(".json").read_text())["centre_crop"] == 47


@pytest.mark.parametrize("stem", [4, 0])
def test_blur_folded_into_the_first_conv_equals_blurring_the_face(sample, stem):
    """TTA(blur=...) costs no op: the Gaussian is folded into the first 3x3 conv, which becomes 5x5."""
    import keras
    from fer_convert.model import (
        TTA,
        build_model,
        gaussian_kernel,
        logits_layer,
        with_input_blur,
        with_test_time_average,
    )

    keras.utils.set_random_seed(3)
    model = build_model((8, 16), stem=stem)
    faces = sample[0][:32].astype(np.float32)
    g = gaussian_kernel(0.5)
    # the blur in the network's own terms: zero padding after Rescaling is mid-grey, 127.5
    padded = np.pad(faces, ((0, 0), (1, 1), (1, 1)), constant_values=127.5)
    blurred = sum(g[u, v] * padded[:, u:u + 48, v:v + 48] for u, v in np.ndindex(3, 3))
    folded = with_input_blur(model, 0.5)
    assert folded.layers[2].get_config()["kernel_size"] == (5, 5)
    assert folded.count_params() > model.count_params()

    def logits(m: keras.Model, x: np.ndarray) -> np.ndarray:
        return keras.Model(m.inputs, logits_layer(m).output).predict(x[..., None], verbose=0)

    # the border is zero-padded once instead of twice: a small difference, far below what a
    # face left sharp or blurred one pixel off would show
    error = np.abs(logits(folded, faces) - logits(model, blurred)).max()
    assert error < np.abs(logits(folded, faces) - logits(model, faces)).max() / 5
    assert error < np.abs(logits(folded, faces) - logits(model, np.roll(blurred, 1, axis=2))).max() / 5
    assert g.sum() == pytest.approx(1) and g[1, 1] > g[0, 1] > g[0, 0]
    assert with_input_blur(model, 0) is model
    assert with_test_time_average(model, TTA(mirror=False, blur=0.5)).count_params() == folded.count_params()
    with pytest.raises(ValueError, match="blur must be 0..0.6"):
        TTA(blur=1.0)


# --- weight averaging of fine-tunes (fer_convert.soup) -------------------------------------


def test_soup_averages_every_weight_and_refuses_other_architectures(tmp_path, capsys):
    import keras
    from fer_convert import soup
    from fer_convert.model import build_model

    paths = []
    for seed, widths in ((1, (8, 16)), (2, (8, 16)), (3, (8, 8))):
        keras.utils.set_random_seed(seed)
        model = build_model(widths=widths)
        # move the batch-norm statistics off their initial values so that their average shows
        model.set_weights([w + seed for w in model.get_weights()])
        paths.append(tmp_path / f"m{seed}.keras")
        model.save(paths[-1])
    out = tmp_path / "soup.keras"
    assert soup.main([str(paths[0]), str(paths[1]), "--out", str(out)]) == 0
    a, b = (keras.models.load_model(p).get_weights() for p in paths[:2])
    averaged = keras.models.load_model(out).get_weights()
    assert len(averaged) == len(a) and len(a) > 10
    for got, x, y in zip(averaged, a, b, strict=True):  # batch-norm moving means and variances included
        np.testing.assert_allclose(got, (x + y) / 2, rtol=1e-6)

    assert soup.main([str(paths[0]), str(paths[2]), "--out", str(tmp_path / "bad.keras")]) == 2
    assert re.search(r"weight array \d+ of model 2 has shape .* only fine-tunes of one network",
                     capsys.readouterr().err)
    assert not (tmp_path / "bad.keras").exists()
    # the shipped default and fast networks: other layers (the fast one's stride-2 stem)
    assert soup.main(["models/fer_edge.keras", "models/fer_edge_fast.keras", "--out", str(out)]) == 2
    assert "model 2 has other layers than model 1" in capsys.readouterr().err
    # refused before TensorFlow loads anything: too few models, missing files, other formats
    assert soup.main([str(paths[0]), "--out", str(tmp_path / "one.keras")]) == 2
    assert "at least two models" in capsys.readouterr().err
    assert soup.main([str(paths[0]), str(tmp_path / "missing.keras"), "--out", str(out)]) == 2
    assert "missing.keras not found" in capsys.readouterr().err
    assert soup.main([str(paths[0]), "models/fer_edge_int8.tflite", "--out", str(tmp_path / "soup")]) == 2
    err = capsys.readouterr().err
    assert "fer_edge_int8.tflite is a TFLite model, and this needs the Keras model it was" in err
    assert "--out " + str(tmp_path / "soup") + " is not a .keras file" in err
    (tmp_path / "bogus.keras").write_bytes(b"not a zip")
    assert soup.main([str(paths[0]), str(tmp_path / "bogus.keras"), "--out", str(out)]) == 2
    assert "bogus.keras is not a Keras archive" in capsys.readouterr().err
