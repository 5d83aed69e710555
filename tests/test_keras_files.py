"""Every host tool given a .keras file that is not a Keras model: one error line, exit 2, no traceback."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from support.media import make_face_video

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


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("make, message", [
    (not_a_zip, "is not a Keras archive (a .keras file is a zip that Keras writes)"),
    (a_zip_without_a_model, "as a Keras model (\"There is no item named 'config.json' in the archive\")"),
])
def test_a_file_that_is_not_a_keras_model_is_one_clear_error(tool, make, message, data, tmp_path, capsys):
    model = make(tmp_path)
    main, argv = tool_runs(model, data, tmp_path)[tool]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: {'cannot read ' if 'config.json' in message else ''}{model}" in err
    assert message in err and "pass a .keras model written by fer_convert.train or fer_convert.soup" in err
    assert not (tmp_path / "m.tflite").exists() and not (tmp_path / "soup.keras").exists()


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
