"""The fer-edge command as a user runs it: bad input gives one clear line and an exit code."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from devkit.images import flat_png, header_only_jpeg
from devkit.media import astronaut_bgr
from fer_edge.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def fer_edge(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``python -m fer_edge ARGS`` as a user would, capturing its output."""
    return subprocess.run([sys.executable, "-m", "fer_edge", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def commands() -> dict[str, argparse.ArgumentParser]:
    """Each ``fer-edge`` command's parser, by name."""
    return next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices


def test_every_option_of_every_command_has_help():
    """What ``fer-edge COMMAND --help`` lists: each option and argument with a line of its own."""
    bare = [f"{name} {'/'.join(action.option_strings) or action.dest}"
            for name, parser in commands().items() for action in parser._actions
            if not action.help or not action.help.strip()]
    assert bare == []


def subparser(name: str) -> argparse.ArgumentParser:
    return commands()[name]


def option_help(command: str, option: str) -> str:
    return next(a.help or "" for a in subparser(command)._actions if option in a.option_strings)


def test_every_option_with_a_default_shows_it_in_its_help():
    hidden = []
    for name, parser in commands().items():
        for action in parser._actions:
            default = action.default
            if default in (None, False, argparse.SUPPRESS) or action.nargs == 0:
                continue  # no default, or a flag
            shown = f"{default:g}" if isinstance(default, float) else str(default)
            if f"default: {shown})" not in (action.help or ""):
                hidden.append(f"{name} {'/'.join(action.option_strings)}: {action.help!r}")
    assert hidden == []


def test_bench_model_help_names_one_default():
    from fer_edge.classifier import DEFAULT_MODEL_NAME, FAST_MODEL_NAME

    default = option_help("bench", "--model").split("(default:", 1)[1]
    assert DEFAULT_MODEL_NAME in default and FAST_MODEL_NAME not in default


def test_annotate_source_help_names_every_photo_it_accepts():
    from fer_edge.tools.annotate import PHOTO_SUFFIXES

    source = option_help("annotate", "--source")
    assert "photo" in source
    assert [s for s in sorted(PHOTO_SUFFIXES) if s not in source] == []


@pytest.mark.parametrize("args, code, message", [
    (["run", "--source", "webcam-please"], 1, "unknown source 'webcam-please'"),
    (["run", "--source", "/nonexistent/clip.mp4"], 1, "video file /nonexistent/clip.mp4 not found"),
    (["run", "--source", "0", "--model", "/nonexistent/model.tflite"], 1,
     "model file /nonexistent/model.tflite not found; pass --model"),
    (["run", "--source", "0", "--model", "tests/data/float_input.tflite"], 1,
     "expected one uint8[1, 48, 48, 1] input"),
    (["run", "--source", "0", "--publish", "every", "--mqtt-port", "0"], 78,
     "mqtt.port: 0 must be a TCP port"),
    (["run", "--config", "/nonexistent/config.toml"], 78, "config file /nonexistent/config.toml not found"),
])
@pytest.mark.slow
def test_bad_input_gives_a_clear_message_and_exit_code(args, code, message):
    result = fer_edge(*args)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_version_names_the_installed_distribution():
    from importlib.metadata import version

    result = fer_edge("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"fer-edge {version('fer-edge')}\n"


def test_corrupt_and_empty_videos_are_refused(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(bytes(range(256)) * 64)
    for video in (empty, corrupt):
        result = fer_edge("run", "--source", str(video))
        assert result.returncode == 1
        assert "not a readable video" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_camera_that_cannot_be_opened(tmp_path):
    (tmp_path / "config.toml").write_text('[source]\nspec = "/dev/video99"\nopen_timeout = 0.5\n')
    result = fer_edge("run", "--config", str(tmp_path / "config.toml"))
    assert result.returncode == 1
    assert "/dev/video99 cannot be opened" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_predict_reports_bad_and_huge_images_and_goes_on_to_the_next(tmp_path):
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), astronaut_bgr())
    bomb = tmp_path / "bomb.jpg"
    bomb.write_bytes(header_only_jpeg(30000, 30000))
    flat = tmp_path / "flat.png"
    flat.write_bytes(flat_png(8000, 8000))  # 64 megapixels in a few hundred kilobytes
    not_image = tmp_path / "notes.txt"
    not_image.write_text("hello")
    missing = tmp_path / "missing.jpg"
    result = fer_edge("predict", str(bomb), str(flat), str(not_image), str(missing), str(photo))
    assert result.returncode == 1  # some inputs were bad
    assert "Traceback" not in result.stderr, result.stderr
    *errors, last = (json.loads(line) for line in result.stdout.splitlines())
    assert errors == [
        {"image": str(bomb), "error": "a JPEG of 30000x30000 pixels (900.0 megapixels), over the limit of 40 "
                                      "megapixels (images.max_pixels); nothing was decoded"},
        {"image": str(flat), "error": "a PNG of 8000x8000 pixels (64.0 megapixels), over the limit of 40 "
                                      "megapixels (images.max_pixels); nothing was decoded"},
        {"image": str(not_image), "error": "not an image: use a JPEG, PNG, BMP, WebP, GIF or TIFF"},
        {"image": str(missing), "error": "cannot read it (No such file or directory)"},
    ]
    (face,) = last["faces"]
    x, y, w, h = face["box"]
    assert abs(x - 177) < 15 and abs(y - 66) < 15 and 80 < w < 115
    assert abs(sum(face["scores"].values()) - 1) < 1e-3
    assert face["emotion"] == max(face["scores"], key=face["scores"].get)


@pytest.mark.slow
def test_plain_install_finds_the_bundled_models(tmp_path):
    """A non-editable install (pip install .) carries both models as package data."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True, capture_output=True, timeout=300)
    probe = ("from fer_edge.classifier import TFLiteExpressionClassifier as C\n"
             "for name in (None, 'fer_edge_fast_int8.tflite'):\n"
             "    c = C(name); print(c.model_path, len(c.labels))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    (default, count), (fast, fast_count) = (line.split() for line in result.stdout.splitlines())
    assert default.startswith(str(target)) and default.endswith("fer_edge_int8.tflite") and count == "7"
    assert fast.startswith(str(target)) and fast.endswith("fer_edge_fast_int8.tflite") and fast_count == "7"
    # only the project-named packages: no generic `edge`, `convert` or `systemd` on sys.path
    top_level = next(target.glob("fer_edge-*.dist-info/top_level.txt")).read_text().split()
    assert sorted(top_level) == ["fer_convert", "fer_edge"]
    assert sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info")) == \
        ["bin", "fer_convert", "fer_edge"]
