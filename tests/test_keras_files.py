"""Every host tool given a .keras file that is not a Keras model: one error line, exit 2, no traceback."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from devkit.media import make_face_video

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]

@pytest.fixture(scope="module")
def data(tmp_path_factory, sample) -> Path:
    """The 500-face sample as an npz with every split (Training, PublicTest, PrivateTest)."""
    images, labels = sample
    path = tmp_path_factory.mktemp("data") / "f.npz"
    np.savez(path, images=images, labels=labels, usage=(np.arange(len(labels)) % 3).astype(np.uint8))
    return path


def not_a_zip(folder: Path) -> Path:
    path = folder / "truncated.keras"
    path.write_bytes(b"PK\x03\x04 cut short")
    return path


def a_zip_without_a_model(folder: Path) -> Path:
    path = folder / "other.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "not a model")
    return path


def tool_runs(model: Path, data: Path, out: Path) -> dict[str, tuple]:
    """Each tool's entry point and the arguments that hand it ``model``."""
    from fer_convert import evaluate, profile, quantize, soup, train

    return {
        "evaluate": (evaluate.main, [str(model), "--data", str(data)]),
        "quantize": (quantize.main, [str(model), "--data", str(data), "--out", str(out / "m.tflite")]),
        "profile": (profile.main, [str(model)]),
        "train --init": (train.main, ["--data", str(data), "--out", str(out / "run"), "--init", str(model)]),
        "train --teacher": (train.main, ["--data", str(data), "--out", str(out / "run"),
                                         "--teacher", str(model)]),
        "soup": (soup.main, ["models/fer_edge.keras", str(model), "--out", str(out / "soup.keras")]),
    }


TOOLS = ["evaluate", "quantize", "profile", "train --init", "train --teacher", "soup"]


def the_int8_model(folder: Path) -> Path:
    return Path("models/fer_edge_int8.tflite")


@pytest.mark.parametrize("tool, make, message", [(tool, make, message) for tool in TOOLS
                                                  for make, message in [
    (not_a_zip, "is not a Keras archive (a .keras file is a zip that Keras writes); pass a .keras model "
                "written by fer_convert.train or fer_convert.soup"),
    (a_zip_without_a_model, "as a Keras model (\"There is no item named 'config.json' in the archive\"); "
                            "pass a .keras model written by fer_convert.train or fer_convert.soup"),
    (the_int8_model, "is a TFLite model, and this needs the Keras model it was quantized from (for the "
                     "bundled ones: models/fer_edge.keras for fer_edge_int8.tflite"),
] if not (tool == "evaluate" and make is the_int8_model)])  # evaluate scores .tflite files too
def test_a_file_that_is_not_a_keras_model_is_one_clear_error(tool, make, message, data, tmp_path, capsys):
    model = make(tmp_path)
    main, argv = tool_runs(model, data, tmp_path)[tool]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: {'cannot read ' if 'config.json' in message else ''}{model}" in err
    assert message in err
    # refused before anything was written: no model, no soup, no run folder
    assert not {"m.tflite", "soup.keras", "run"} & {path.name for path in tmp_path.iterdir()}


def test_compare_names_a_float_model_it_cannot_read(tmp_path, capsys):
    from fer_convert import compare

    model = not_a_zip(tmp_path)
    video = make_face_video(tmp_path / "clip.avi", frames=3)
    assert compare.main(["--source", str(video), "--compare", "--keras-model", str(model)]) == 1
    assert f"error: {model} is not a Keras archive" in capsys.readouterr().err


def test_init_from_another_network_names_the_options(data, tmp_path, capsys):
    from fer_convert import train

    argv = ["--data", str(data), "--out", str(tmp_path / "run"), "--init", "models/fer_edge_fast.keras",
            "--limit", "64", "--epochs", "1"]
    assert train.main(argv) == 2
    assert ("--init models/fer_edge_fast.keras is another network than --widths and --stem build"
            in capsys.readouterr().err)
    # before the data, the teacher's scoring and the run folder: a --data that is not there is not reached
    argv = ["--data", str(tmp_path / "none.npz"), "--out", str(tmp_path / "run"), "--teacher",
            "models/fer_edge.keras", "--init", "models/fer_edge_fast.keras"]
    assert train.main(argv) == 2
    assert "is another network" in capsys.readouterr().err and not (tmp_path / "run").exists()




@pytest.mark.parametrize("tool", ["evaluate", "quantize", "train --init", "soup"])
def test_an_output_that_cannot_be_written_is_named_before_the_work(tool, data, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    main, argv = tool_runs(Path("models/fer_edge.keras"), data, blocker)[tool]
    if tool == "evaluate":
        argv = [*argv, "--json", str(blocker / "reports" / "r.json")]
    assert main(argv) == 2
    assert f"cannot write {blocker}/" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (None, "not found; pass an int8 .tflite file made by fer_convert.quantize or a .keras model"),
    (b"", "is not a TFLite model (no TFL3 identifier at byte 4); pass an int8 .tflite file"),
    (b"\x20\x00\x00\x00TFL3 then cut short", "is not a valid TFLite model"),
])
def test_evaluate_names_a_tflite_file_it_cannot_run(content, message, data, tmp_path, capsys):
    from fer_convert import evaluate

    model = tmp_path / "model.tflite"
    if content is not None:
        model.write_bytes(content)
    assert evaluate.main([str(model), "--data", str(data)]) == 2
    assert f"error: {'model ' if content is None else ''}{model}" in (err := capsys.readouterr().err)
    assert message in err


def test_an_output_may_not_be_an_input_or_a_folder(data, tmp_path, capsys):
    """quantize --out onto its own model, soup --out onto an ingredient, outputs that are folders."""
    from fer_convert import evaluate, quantize, soup

    model = tmp_path / "fer_edge.keras"
    model.write_bytes(Path("models/fer_edge.keras").read_bytes())
    before = model.read_bytes()
    (tmp_path / "dir.tflite").mkdir()
    cases = [
        (quantize.main, [str(model), "--data", str(data), "--out", str(model)], "does not end in .tflite"),
        (quantize.main, [str(model), "--data", str(data), "--out", str(tmp_path / "dir.tflite")],
         "dir.tflite is a folder; name a file to write"),
        (evaluate.main, [str(model), "--data", str(data), "--json", str(tmp_path / "dir.tflite")],
         "does not end in .json"),
        (evaluate.main, [str(model), "--data", str(data), "--confusion", str(tmp_path / "c.txt")],
         "c.txt does not end in .png"),
        (soup.main, [str(model), str(model), "--out", str(model)],
         "is also an input of this command: writing it would overwrite it"),
    ]
    for main, argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert model.read_bytes() == before


def test_a_network_of_another_shape_is_named(tmp_path, data, capsys):
    import keras
    from fer_convert import evaluate, quantize

    faces = keras.Input((64, 64, 3))
    keras.Model(faces, keras.layers.Dense(7, name="logits")(keras.layers.Flatten()(faces))).save(
        tmp_path / "rgb.keras")
    faces = keras.Input((48, 48, 1))
    keras.Model(faces, keras.layers.Dense(3, name="logits")(keras.layers.Flatten()(faces))).save(
        tmp_path / "three.keras")
    keras.Model(faces, keras.layers.Dense(7)(keras.layers.Flatten()(faces))).save(tmp_path / "nameless.keras")
    for name, message in [("rgb", "takes inputs of shape (None, 64, 64, 3), where fer-edge networks take"),
                          ("three", "gives outputs of shape (None, 3), where fer-edge networks give"),
                          ("nameless", "has no dense layer named 'logits' before its softmax")]:
        model = str(tmp_path / f"{name}.keras")
        assert evaluate.main([model, "--data", str(data), "--temperature", "2"]) == 2
        assert message in capsys.readouterr().err
        assert quantize.main([model, "--data", str(data), "--out", str(tmp_path / "x.tflite")]) == 2
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("tool, argv, message", [
    ("train --init", ["--epochs", "0"], "argument --epochs: expected an integer >= 1, got '0'"),
    ("train --init", ["--lr", "0"], "argument --lr: expected a number > 0, got '0'"),
    ("train --init", ["--ema", "1"], "argument --ema: expected a number >= 0 and < 1, got '1'"),
    ("train --init", ["--teacher-weight", "nan"],
     "argument --teacher-weight: expected a number >= 0 and <= 1, got 'nan'"),
    ("quantize", ["--calibration-faces", "3"],
     "argument --calibration-faces: expected an integer >= 7, got '3'"),
    ("profile", ["--number", "0"], "argument --number: expected an integer >= 1, got '0'"),
    ("quantize", ["--temperature", "nan"], "argument --temperature: expected 'fit' or a number >= 0.05"),
    ("quantize", ["--temperature", "1e-40"], "argument --temperature: expected 'fit' or a number >= 0.05"),
    ("quantize", ["--gate-split", "bogus"], "argument --gate-split: unknown split 'bogus'"),
    ("evaluate", ["--temperature", "inf"], "argument --temperature: expected a number >= 0.05 and <= 20"),
    ("evaluate", ["--split", "bogus"], "argument --split: unknown split 'bogus'"),
    ("train --init", ["--seed", "-1"], "argument --seed: expected an integer >= 0 and <= 4.29497e+09"),
])
def test_out_of_range_or_nonsense_values_are_usage_errors(tool, argv, message, data, tmp_path, capsys):
    main, base = tool_runs(Path("models/fer_edge.keras"), data, tmp_path)[tool]
    with pytest.raises(SystemExit) as exit_:
        main([*base, *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_resume_needs_a_run_and_a_refused_run_leaves_no_folder(data, tmp_path, capsys):
    from fer_convert import train

    run = tmp_path / "typo" / "run"
    assert train.main(["--data", str(data), "--out", str(run), "--resume"]) == 2
    assert f"{run} holds no run to resume" in capsys.readouterr().err
    assert train.main(["--data", str(tmp_path / "none.npz"), "--out", str(run)]) == 2
    assert "none.npz" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()


def test_an_ensemble_member_that_does_not_load_is_named_before_scoring(data, tmp_path, capsys, monkeypatch):
    from fer_convert import evaluate

    scored = []
    monkeypatch.setattr(evaluate, "predict", lambda *args: scored.append(args) or None)
    broken = a_zip_without_a_model(tmp_path)
    assert evaluate.main(["models/fer_edge_fast.keras", str(broken), "--data", str(data)]) == 2
    assert f"cannot read {broken} as a Keras model" in capsys.readouterr().err and not scored


@pytest.mark.parametrize("tool, argv, message", [
    ("evaluate", ["--tta-side", "40"], "--tta-side 40 sets the side of the crops of --tta-crops 2..6"),
    ("quantize", ["--tta-side", "40"], "with one crop (the whole face) it has no effect"),
    ("train --init", ["--teacher-weight", "0.5"], "without a --teacher MODEL they have no effect"),
    ("train --init", ["--teacher-centre-crop", "47"], "--teacher-weight and --teacher-centre-crop shape"),
])
def test_an_option_that_would_do_nothing_is_refused(tool, argv, message, data, tmp_path, capsys):
    main, base = tool_runs(Path("models/fer_edge.keras"), data, tmp_path)[tool]
    assert main([*base, *argv]) == 2
    assert message in capsys.readouterr().err
    assert not {"m.tflite", "run"} & {path.name for path in tmp_path.iterdir()}


def test_resume_with_init_and_a_soup_of_copies_are_refused(data, tmp_path, capsys):
    from fer_convert import soup, train

    argv = ["--data", str(data), "--out", str(tmp_path / "run"), "--resume",
            "--init", "models/fer_edge.keras"]
    assert train.main(argv) == 2
    assert "--init starts a new run from a model's weights and --resume continues" in capsys.readouterr().err
    argv = ["models/fer_edge.keras", "./models/fer_edge.keras", "--out", str(tmp_path / "s.keras")]
    assert soup.main(argv) == 2
    assert "a model is given twice" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
