"""Annotated output: drawing, and ``fer-edge annotate`` on a video of a real face."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from devkit.images import header_only_jpeg
from devkit.media import astronaut_bgr, make_face_video
from fer_edge.classifier import Expression
from fer_edge.cli import main
from fer_edge.config import load_config
from fer_edge.errors import ImageTooLargeError
from fer_edge.overlay import EMOTION_COLOURS, colour_for, draw_annotations
from fer_edge.tools.annotate import check_photo_source, count_frames
from fer_edge.web.preview import TrackSnapshot

ROOT = Path(__file__).resolve().parents[1]
FRAMES = 12
HAPPY = Expression("happy", 0.87, {"happy": 0.87, "neutral": 0.13})
SAD = Expression("sad", 0.6, {"sad": 0.6, "neutral": 0.4})


@pytest.fixture(scope="module")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_face_video(tmp_path_factory.mktemp("video") / "astronaut.avi", frames=FRAMES, fps=15)


def test_draws_box_and_filled_label_in_the_emotion_colour_on_a_copy() -> None:
    image = np.full((240, 320, 3), 30, np.uint8)
    drawn = draw_annotations(image, [(TrackSnapshot(7, (100, 80, 60, 60)), HAPPY)])
    assert (image == 30).all()  # the frame itself is untouched
    assert tuple(drawn[110, 100]) == EMOTION_COLOURS["happy"]  # left edge of the box
    label = drawn[63:80, 100:198]  # the filled label above the box, with dark text on it
    fill = (label == EMOTION_COLOURS["happy"]).all(axis=2)
    assert fill[:, 0].all() and fill.mean() > 0.6
    assert (label.max(axis=2) < 60).sum() > 100


def test_grayscale_frames_come_back_bgr_and_labels_stay_inside_the_frame() -> None:
    gray = np.full((120, 160), 200, np.uint8)  # a Pi's Y plane
    faces = [(TrackSnapshot(1, (0, 0, 50, 50)), SAD), (TrackSnapshot(2, (140, 60, 20, 20)), HAPPY)]
    drawn = draw_annotations(gray, faces)
    assert drawn.shape == (120, 160, 3) and drawn.dtype == np.uint8
    assert tuple(drawn[25, 0]) == EMOTION_COLOURS["sad"]  # no room above: label inside the box
    assert tuple(drawn[2, 2]) == EMOTION_COLOURS["sad"]


def test_unknown_labels_get_a_stable_colour_of_their_own() -> None:
    assert colour_for("contempt") == colour_for("contempt")
    assert colour_for("contempt") not in EMOTION_COLOURS.values()


@pytest.mark.slow
def test_annotate_command_writes_a_playable_mp4_of_every_frame(face_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "annotated.mp4"
    result = subprocess.run([sys.executable, "-m", "fer_edge", "annotate", "--source", str(face_video),
                             "--out", str(out)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert f"{out}: {FRAMES} frames at 15 fps, {FRAMES} face boxes" in result.stdout
    assert count_frames(out) == FRAMES
    capture = cv2.VideoCapture(str(out))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(15)
    ok, first = capture.read()
    capture.release()
    ok, source = cv2.VideoCapture(str(face_video)).read()
    assert ok and first.shape == source.shape == (480, 640, 3)
    # At frame 0 the astronaut's face is at x 149, y 80..160: its left edge is now drawn in an
    # emotion's colour (give or take the two codecs).
    band = (slice(100, 150), slice(140, 160))
    changed = np.abs(first[band].astype(int) - source[band]).max(axis=2) > 60
    pixels = first[band][changed].astype(int)
    assert len(pixels) >= 40, "no box drawn at the face"
    # mp4v's chroma subsampling blends a 2 px line with its surroundings: compare the median
    median = np.median(pixels, axis=0)
    assert min(np.abs(median - colour).max() for colour in EMOTION_COLOURS.values()) < 40, median


@pytest.mark.slow
def test_annotate_stops_after_max_frames(face_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "short.avi"
    result = subprocess.run([sys.executable, "-m", "fer_edge", "annotate", "--source", str(face_video),
                             "--out", str(out), "--max-frames", "4"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert count_frames(out) == 4


@pytest.mark.parametrize("out, message", [
    ("missing-dir/out.mp4", "directory {tmp}/missing-dir does not exist"),
    ("out.gif", "use an .mp4 or .avi output file"),
])
@pytest.mark.slow
def test_annotate_refuses_an_unwritable_output(face_video: Path, tmp_path: Path, out: str,
                                               message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "fer_edge", "annotate", "--source", str(face_video),
                             "--out", str(tmp_path / out)], capture_output=True, text=True, timeout=60,
                            cwd=ROOT)
    assert result.returncode == 1
    assert message.format(tmp=tmp_path) in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_annotate_of_a_photo_draws_its_faces_as_predict_finds_them(tmp_path: Path) -> None:
    photo, out = tmp_path / "astronaut.png", tmp_path / "annotated.png"
    cv2.imwrite(str(photo), astronaut_bgr())
    result = subprocess.run([sys.executable, "-m", "fer_edge", "annotate", "--source", str(photo),
                             "--out", str(out)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{out}: 1 face box"
    drawn = cv2.imread(str(out))
    assert drawn.shape == (512, 512, 3) and not np.array_equal(drawn, astronaut_bgr())
    refused = subprocess.run([sys.executable, "-m", "fer_edge", "annotate", "--source", str(photo),
                              "--out", str(tmp_path / "out.mp4")], capture_output=True, text=True,
                             timeout=120, cwd=ROOT)
    assert refused.returncode == 1 and "is a photo: write it to an image file" in refused.stderr


@pytest.mark.parametrize("source", ["{path}", "file:{path}"])
def test_annotate_refuses_a_photo_over_the_pixel_cap_before_decoding_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str) -> None:
    bomb = tmp_path / "bomb.jpg"
    bomb.write_bytes(header_only_jpeg(30000, 30000))
    code = main(["annotate", "--source", source.format(path=bomb), "--out", str(tmp_path / "out.mp4")])
    assert code == 1
    err = capsys.readouterr().err
    assert ("fer-edge: error: a JPEG of 30000x30000 pixels (900.0 megapixels), over the limit of 40 "
            "megapixels (images.max_pixels); nothing was decoded") in err
    assert not (tmp_path / "out.mp4").exists()


def test_a_photo_under_the_cap_and_a_video_pass_the_photo_check(face_video: Path, tmp_path: Path) -> None:
    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), astronaut_bgr())
    check_photo_source(load_config(None, {"source.spec": str(photo)}, environ={}))
    check_photo_source(load_config(None, {"source.spec": str(face_video)}, environ={}))
    with pytest.raises(ImageTooLargeError):
        check_photo_source(load_config(None, {"source.spec": str(photo), "images.max_pixels": 10_000},
                                       environ={}))
