"""make check-arm64's pure parts: the README steps it runs, and how it compares events (no QEMU here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "arm64"))
from compare import compare_events, compare_predict  # noqa: E402
from guest import install_commands  # noqa: E402


def test_the_pi_steps_are_the_readmes():
    commands, apt = install_commands("### Raspberry Pi", "/opt/fer-edge/venv-x", "/work/src")
    assert commands == [["python3", "-m", "venv", "--system-site-packages", "/opt/fer-edge/venv-x"],
                        ["/opt/fer-edge/venv-x/bin/pip", "install", "/work/src"]]
    assert apt == [["apt", "install", "-y", "python3-picamera2", "python3-venv", "mosquitto-clients"]]


def test_the_jetson_steps_keep_numpy_1_and_pip_off_opencv():
    commands, _apt = install_commands("### Jetson", "/opt/v", "/work/src")
    pip_lines = [words for words in commands if words[0] == "/opt/v/bin/pip"]
    assert "numpy<2" in pip_lines[0] and not any("opencv" in word for word in pip_lines[0])
    assert pip_lines[1] == ["/opt/v/bin/pip", "install", "--no-deps", "/work/src"]
    assert commands[-1][:2] == ["/opt/v/bin/python", "-c"]  # the import check the README asks for


def event(frame: int = 0, face_id: int = 1, box: list[int] | None = None, happy: float = 0.9) -> dict:
    """An emotion event as the daemon publishes it (two labels are enough here)."""
    return {"frame": frame, "face_id": face_id, "box": box or [10, 20, 30, 30], "emotion": "happy",
            "confidence": round(happy, 4), "scores": {"happy": happy, "sad": round(1 - happy, 6)},
            "reason": "frame"}


@pytest.mark.parametrize("ours, problem", [
    ([event(box=[11, 20, 30, 30])], "frame 0 track 1 box [11, 20, 30, 30], native [10, 20, 30, 30]"),
    ([event(face_id=2)], "frame 0 track 1: missing"),
    ([event(), event(frame=1)], "frame 1 track 1: not in the native run"),
    ([event(happy=0.900002)], "frame 0 track 1 happy 0.900002, native 0.9"),
])
def test_an_event_that_differs_is_named(ours, problem):
    diff = compare_events(ours, [event()], tolerance=1e-6)
    assert problem in diff.problems


def test_scores_within_the_tolerance_are_the_same():
    diff = compare_events([event(happy=0.900001)], [event()], tolerance=1e-6)
    assert diff.problems == [] and diff.largest == pytest.approx(1e-6)
    assert "same as native" in diff.summary("1 event")


def test_predict_compares_faces_per_photo():
    face = {"box": [1, 2, 3, 3], "emotion": "happy", "scores": {"happy": 0.9071, "sad": 0.0929}}
    native = {"a.png": {"faces": [face]}, "b.png": {"faces": []}}
    assert compare_predict(native, native, 1e-6).problems == []
    # printed to 4 decimals: one unit in the last place may be rounding of scores within 1e-6
    rounded = {**face, "scores": {"happy": 0.9072, "sad": 0.0928}}
    close = {"a.png": {"faces": [rounded]}, "b.png": {"faces": []}}
    assert compare_predict(close, native, 1e-6).problems == []
    missing = {"a.png": {"faces": []}, "b.png": {"faces": []}}
    assert compare_predict(missing, native, 1e-6).problems == ["a.png: 0 faces, native 1"]
