"""``fer-edge bench`` and the host's ``fer_convert.compare``, run as a user would, on a real face.

No timing is asserted (shared machines are noisy): only that every figure is there, is sane,
and that the face is found in every frame.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from devkit.media import make_face_video
from fer_edge.errors import EdgeError

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("capture", "detect", "classify", "classify_face", "publish")
TF_MISSING = "TensorFlow is not installed: pip install -e '.[convert]'"

pytestmark = [pytest.mark.slow]



@pytest.fixture(scope="module")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 frames of the astronaut's face drifting across a 640x480 frame."""
    return make_face_video(tmp_path_factory.mktemp("bench") / "astronaut.avi", frames=20, fps=15)


def bench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``fer-edge bench ARGS`` as a user would."""
    return subprocess.run([sys.executable, "-m", "fer_edge", "bench", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def host_compare(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -m fer_convert.compare ARGS`` (the host-side comparisons) as a user would."""
    return subprocess.run([sys.executable, "-m", "fer_convert.compare", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def bench_json(*args: str) -> dict:
    """The one JSON object bench --json prints on stdout."""
    return only_json(bench(*args, "--json"))


def compare_json(*args: str) -> dict:
    """The one JSON object fer_convert.compare --json prints on stdout."""
    return only_json(host_compare(*args, "--json"))


def only_json(result: subprocess.CompletedProcess) -> dict:
    """The one JSON object a command printed on stdout, once it exited cleanly."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # the whole of stdout: nothing else may be printed there


def check_stages(stages: dict, names: tuple[str, ...] = STAGES) -> None:
    for name in names:
        assert 0 <= stages[name]["p50_ms"] <= stages[name]["p95_ms"], (name, stages[name])


def test_json_has_fps_stages_recall_and_settings(face_video):
    report = bench_json("--source", str(face_video))
    assert report["frames"] == 20 and report["frame_size"] == [640, 480]
    assert report["fps"] > 0 and report["ms_per_frame"] > 0
    check_stages(report["stages"])
    # the tracker bridges the few frames where Haar misses the drifting face
    assert report["recall"] == 1.0 and 0.5 < report["detect_recall"] <= 1.0
    assert report["faces_per_frame"] >= 1.0
    assert report["cpu_s"] > 0 and report["cpu_ms_per_frame"] > 0 and report["peak_rss_kib"] > 10_000
    settings = report["settings"]
    assert settings["model"].endswith("fer_edge_int8.tflite") and settings["threads"] == 1
    assert {"type", "score_threshold", "scale_factor", "min_neighbors", "min_face", "max_faces",
            "working_width", "detect_every", "equalize"} <= settings["detector"].keys()
    assert settings["detector"]["type"] == "yunet"
    # where the time goes: each stage's share of the frame, and what to change first
    shares = report["time_shares"]
    assert list(shares) == ["capture", "detect", "classify", "publish", "other"]
    assert all(share >= 0 for share in shares.values()) and abs(sum(shares.values()) - 1) < 0.01
    assert f"{max(shares.values()):.0%} of a frame" in report["advice"]


def test_table_names_every_stage(face_video):
    result = bench("--source", str(face_video), "--frames", "5", "--threads", "2")
    assert result.returncode == 0, result.stderr
    for name in (*STAGES, "fps", "frames with a face 100.0%", "peak RSS", "2 LiteRT thread(s)",
                 "time per frame: capture", "of a frame"):
        assert name in result.stdout


def test_both_detectors_alternated_with_a_recommendation(face_video):
    report = bench_json("--source", str(face_video), "--frames", "6", "--detector", "haar",
                        "--detector", "yunet")
    rows = {row["type"]: row for row in report["detectors"]}
    assert rows.keys() == {"haar", "yunet"}
    for row in rows.values():
        assert row["fps"] > 0 and row["detect_ms_per_run"] > 0 and 0 <= row["detect_recall"] <= 1
    assert rows["yunet"]["recall"] == 1.0  # the astronaut is found in every frame
    assert report["recommendation"].startswith('use detector.type = "')
    text = bench("--source", str(face_video), "--frames", "3", "--detector", "haar", "--detector", "yunet")
    assert text.returncode == 0, text.stderr
    assert "detectors (alternated" in text.stdout and "use detector.type" in text.stdout


@pytest.mark.tensorflow
def test_sweep_and_compare_with_a_given_float_model(face_video):
    # the int8 model stands in for the float one: this checks the plumbing, not the speed-up
    report = bench_json("--source", str(face_video), "--frames", "3", "--sweep")
    rows = report["sweep"]  # YuNet's: 3 score thresholds x 4 widths, then detect_every 2 and 3
    assert len(rows) == 3 * 4 + 2 and sum(row["configured"] for row in rows) == 1
    assert {row["settings"]["detect_every"] for row in rows} == {1, 2, 3}
    assert all(row["fps"] > 0 and 0 <= row["detect_recall"] <= row["recall"] <= 1 for row in rows)
    assert next(row for row in rows if row["configured"])["recall"] == 1.0
    report = compare_json("--source", str(face_video), "--frames", "3", "--compare",
                          "--float-model", str(ROOT / "models" / "fer_edge_int8.tflite"))
    compare = report["compare"]
    for name in ("int8", "float"):
        assert compare[name]["frames"] == 3
        check_stages(compare[name]["stages"])
    assert compare["classify_face_speedup"] > 0 and len(compare["fps_ratios"]) == 1


@pytest.mark.tensorflow
def test_baseline_seed_and_float_conversion(face_video):
    if not (importlib.util.find_spec("tensorflow") and importlib.util.find_spec("keras")):
        pytest.fail("the seed baseline needs TensorFlow: pip install -e '.[convert]'")
    report = compare_json("--source", str(face_video), "--frames", "6", "--baseline", "seed",
                          "--compare", "--repeat", "2")
    seed = report["baselines"]["seed"]
    assert seed["theirs"]["frames"] == seed["ours"]["frames"] == 12  # two passes of 6
    check_stages(seed["theirs"]["stages"], ("capture", "detect", "classify", "classify_face"))
    assert seed["theirs"]["recall"] == 1.0 and seed["ours"]["recall"] == 1.0
    assert seed["ratio"] > 0 and len(seed["ratios"]) == 2 and seed["cpu_ratio"] > 0
    assert seed["decode_included"] and seed["settings"]["detector"]["scale_factor"] == 1.3
    assert report["compare"]["float_model"].endswith("fer_edge_float.tflite")
    assert report["compare"]["keras_model"].endswith("models/fer_edge.keras")
    # the shipped default records its views: the centre 47 px and the mirror (models/README.md)
    assert (report["compare"]["mirror_average"], report["compare"]["centre_crop"]) == (True, 47)
    assert report["compare"]["float"]["recall"] == 1.0


@pytest.mark.tensorflow
def test_fast_model_by_name_and_its_plain_float_twin(face_video):
    if not (importlib.util.find_spec("tensorflow") and importlib.util.find_spec("keras")):
        pytest.fail("--compare needs TensorFlow: pip install -e '.[convert]'")
    report = compare_json("--source", str(face_video), "--frames", "3", "--model",
                          "fer_edge_fast_int8.tflite", "--compare")
    assert report["settings"]["model"].endswith("models/fer_edge_fast_int8.tflite")
    compare = report["compare"]
    assert compare["int8"]["recall"] == compare["float"]["recall"] == 1.0
    # converted from fer_edge_fast.keras without the mirror pass, like the int8 model it is compared with
    assert compare["keras_model"].endswith("models/fer_edge_fast.keras")
    assert compare["mirror_average"] is False
    assert compare["blur"] == 0.5  # the float twin has the int8 file's folded blur too (its views entry)


@pytest.mark.tensorflow
def test_baseline_fer_runs_the_fer_package_on_640x480_frames(face_video):
    if not importlib.util.find_spec("fer"):
        pytest.fail("the fer baseline needs the fer package: make test installs it "
                    "(pip install --no-deps fer)")
    report = compare_json("--source", str(face_video), "--frames", "4", "--baseline", "fer", "--repeat", "2")
    fer = report["baselines"]["fer"]
    assert fer["frame_size"] == [640, 480] and not fer["decode_included"]
    assert fer["theirs"]["frames"] == fer["ours"]["frames"] == 8
    # fer's own Haar finds the astronaut too: both loops classified a face in every frame
    assert fer["theirs"]["recall"] == 1.0 and fer["ours"]["recall"] == 1.0
    check_stages(fer["theirs"]["stages"], ("capture", "detect_classify"))
    assert fer["ms_per_frame"]["theirs"] > 0 and fer["ms_per_frame"]["ours"] > 0
    assert fer["ratio"] > 0 and len(fer["ratios"]) == 2
    assert fer["settings"]["pipeline"] == "FER(mtcnn=False)"


def test_missing_fer_package_says_what_to_install(monkeypatch):
    from fer_convert import compare as bench_module

    monkeypatch.setattr(bench_module.importlib.util, "find_spec", lambda name: None)
    args = argparse.Namespace(baseline=["fer"])
    with pytest.raises(EdgeError, match=r"--baseline fer needs the fer package.*pip install --no-deps fer"):
        bench_module.fer_baseline(None, None, 0, args)


def test_missing_tensorflow_says_what_to_install(monkeypatch):
    from fer_convert import compare as bench_module

    monkeypatch.setattr(bench_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EdgeError, match=r"--baseline seed needs TensorFlow.*pip install -e '\.\[convert\]'"):
        bench_module.reference("--baseline seed")


@pytest.mark.parametrize(("shares", "model", "live", "expected"), [
    ({"capture": 0.1, "detect": 0.7, "classify": 0.2}, "fer_edge_int8.tflite", False,
     "face detection takes 70% of a frame: a smaller detector.working_width"),
    ({"capture": 0.1, "detect": 0.3, "classify": 0.6}, "fer_edge_int8.tflite", False,
     'classification takes 60% of a frame (2.0 faces): model.path = "fer_edge_fast_int8.tflite"'),
    ({"capture": 0.1, "detect": 0.3, "classify": 0.6}, "fer_edge_fast_int8.tflite", False,
     "with the fast model: a larger detector.min_face"),
    ({"capture": 0.8, "detect": 0.1, "classify": 0.1}, "fer_edge_int8.tflite", True,
     "waiting for the camera takes 80% of a frame: its frame rate"),
    ({"capture": 0.8, "detect": 0.1, "classify": 0.1}, "fer_edge_int8.tflite", False,
     "decoding takes 80% of a frame"),
])
def test_advice_names_the_stage_that_takes_most_of_a_frame(shares, model, live, expected):
    from fer_edge.bench.report import advice

    result = {"time_shares": shares, "faces_per_frame": 2.0, "settings": {"model": f"/opt/models/{model}"}}
    assert expected in advice(result, live)


def test_float_twin_of_an_int8_model_is_found_or_asked_for(tmp_path):
    from fer_convert.compare import keras_model

    (tmp_path / "mine.keras").write_bytes(b"")
    no_flag = argparse.Namespace(keras_model=None)
    assert keras_model(no_flag, tmp_path / "mine_int8.tflite") == tmp_path / "mine.keras"
    # a name that does not say which .keras it came from is not guessed at
    with pytest.raises(EdgeError, match=r"cannot tell which float Keras model int8\.tflite .* --keras-model"):
        keras_model(no_flag, tmp_path / "int8.tflite")
    given = argparse.Namespace(keras_model=str(tmp_path / "mine.keras"))
    assert keras_model(given, tmp_path / "int8.tflite") == tmp_path / "mine.keras"


@pytest.mark.tensorflow
def test_comparing_classifiers_on_a_clip_without_faces_says_so(tmp_path):
    video = tmp_path / "empty_room.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15, (320, 240))
    for _ in range(3):
        writer.write(np.full((240, 320, 3), 90, np.uint8))
    writer.release()
    result = host_compare("--source", str(video), "--compare", "--float-model",
                          str(ROOT / "models" / "fer_edge_int8.tflite"))
    assert result.returncode == 1
    assert "found no face in 3 frames" in result.stderr and "Traceback" not in result.stderr


def test_unreadable_source_is_one_clear_line(tmp_path):
    result = bench("--source", str(tmp_path / "missing.mp4"))
    assert result.returncode == 1
    assert f"video file {tmp_path / 'missing.mp4'} not found" in result.stderr
    assert "Traceback" not in result.stderr
