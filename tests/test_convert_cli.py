"""``fer-convert``: one console command for the host tools; each subcommand is its module's tool."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ["train", "evaluate", "quantize", "soup", "compare", "profile"]
REINSTALL = "pip install -e . --no-deps (the fer-convert console script comes with the package)"


def fer_convert(*args: str) -> subprocess.CompletedProcess:
    """Run the installed ``fer-convert ARGS`` as a user would."""
    script = Path(sys.executable).with_name("fer-convert")
    assert script.exists(), f"{script} is missing: {REINSTALL}"
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_each_subcommand_has_its_modules_options_and_description():
    """``fer-convert X --help`` is ``python -m fer_convert.X --help`` below the usage lines (which
    wrap by the program's name)."""
    import importlib

    from fer_convert.cli import TOOLS, build_parser

    _, subparsers = build_parser()
    assert [tool.name for tool in TOOLS] == list(subparsers) == SUBCOMMANDS
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"fer_convert.{name}")
        own = module.TOOL.parser().format_help().split("\n\n", 1)[1]
        sub = subparsers[name].format_help().split("\n\n", 1)[1]
        assert own == sub, name
        assert module.__doc__.splitlines()[0] in sub


@pytest.mark.slow
def test_help_lists_every_subcommand():
    result = fer_convert("--help")
    assert result.returncode == 0, result.stderr
    listed = result.stdout.split("positional arguments:")[1].split("options:")[0]
    for name in SUBCOMMANDS:
        assert f"\n    {name} " in listed, name
    # the module form is the same command
    module_form = subprocess.run([sys.executable, "-m", "fer_convert", "--help"], capture_output=True,
                                 text=True, timeout=120, cwd=ROOT)
    assert module_form.stdout == result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("argv, message", [
    (["evaluate", "runs/none.keras", "--data", "x.npz"],
     "fer-convert evaluate: error: model runs/none.keras not found"),
    (["quantize", "models/fer_edge_int8.tflite", "--data", "x.npz", "--out", "x.tflite"],
     "fer-convert quantize: error: models/fer_edge_int8.tflite is a TFLite model"),
    (["soup", "models/fer_edge.keras", "--out", "soup.keras"],
     "fer-convert soup: error: a soup needs at least two models, got 1"),
    (["profile", "models/fer_edge.keras", "--number", "0"],
     "fer-convert profile: error: argument --number: expected an integer >= 1, got '0'"),
    (["compare", "--source", "clip.mp4"],
     "fer-convert compare: error: nothing to compare: pass --compare and/or --baseline seed|fer"),
    pytest.param(["train", "--data", "x.npz", "--out", "runs/never", "--crop", "48"],
                 "fer-convert train: error: --crop must be 24..47 px, got 48", marks=pytest.mark.tensorflow),
])
def test_a_bad_input_is_one_error_line_and_exit_2(argv, message):
    result = fer_convert(*argv)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith(message), result.stderr
    assert "Traceback" not in result.stderr and not result.stdout
    assert not (ROOT / "runs" / "never").exists()
