"""Hostile photos against the header gate, the decode worker's limits and ``fer-edge predict``.

The files come from devkit.hostile (the cases of issue 26): a TIFF that gives its size twice, a
16x16 TIFF in one huge tile, a progressive JPEG whose last scan repeats, and files that are not
files (FIFOs, devices, sparse giants). Each is refused with one line, and what comes after it
is still served.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from devkit.hostile import ambiguous_tiff, endless_progressive_jpeg, huge_tile_tiff
from devkit.media import composite
from fer_edge.decode_worker import DecodeWorker
from fer_edge.errors import ImageError, ImageTooLargeError
from fer_edge.imagefile import check_image_file, decode_image, read_header

ROOT = Path(__file__).resolve().parents[1]
SMALL_PNG = cv2.imencode(".png", np.full((20, 30), 90, np.uint8))[1].tobytes()


@pytest.mark.parametrize("data, message", [
    (ambiguous_tiff(8000, 8000), "an ambiguous TIFF (ImageWidth given twice); nothing was decoded"),
    (ambiguous_tiff(20000, 20000), "an ambiguous TIFF (ImageWidth given twice)"),
    (huge_tile_tiff(), "a TIFF of 16x16 pixels in 16384x16368 tiles (tiles larger than the image)"),
])
def test_tiffs_that_readers_take_two_ways_are_refused_by_the_header(data: bytes, message: str) -> None:
    assert len(data) < 400_000
    with pytest.raises(ImageError, match=re.escape(message)):
        read_header(data)
    with pytest.raises(ImageError, match=re.escape(message)):
        decode_image(data)


@pytest.fixture
def worker() -> DecodeWorker:
    return DecodeWorker(40_000_000)


@pytest.mark.parametrize("data", [ambiguous_tiff(8000, 8000), ambiguous_tiff(20000, 20000), huge_tile_tiff()],
                         ids=["64MP", "400MP", "tile"])
def test_past_the_header_the_worker_refuses_them_as_too_large(worker: DecodeWorker, data: bytes) -> None:
    """The gate bypassed: OpenCV's own pixel limit and the worker's address space still hold."""
    with pytest.raises(ImageTooLargeError, match="a TIFF too large to decode within the decoder's 457 MB"):
        worker.decode(data, cv2.IMREAD_COLOR, "a TIFF")
    assert worker.peak_rss_kb < 200_000  # kB: nothing near the 3.3 GB of a believed header
    assert worker.decode(SMALL_PNG, cv2.IMREAD_GRAYSCALE).shape == (20, 30)


def test_without_opencvs_pixel_limit_the_address_space_stops_the_decode() -> None:
    worker = DecodeWorker(1 << 30, memory_bytes=256 << 20)  # OpenCV would allow 1 Gpx
    with pytest.raises(ImageTooLargeError, match="within the decoder's 256 MB"):
        worker.decode(ambiguous_tiff(20000, 20000), cv2.IMREAD_COLOR, "a TIFF")
    assert worker.peak_rss_kb < 400_000


def test_a_jpeg_whose_scans_repeat_is_stopped_at_its_cpu_limit_and_the_worker_replaced() -> None:
    data = endless_progressive_jpeg(6000, 6000, 300)  # about 7 s of CPU unbounded, 320 kB
    assert read_header(data).pixels == 36_000_000  # under the cap: only the CPU limit stops it
    worker = DecodeWorker(40_000_000, cpu_seconds=1)
    with pytest.raises(ImageError, match=r"a JPEG too slow to decode: over 1 s of CPU; the decode was stop"):
        worker.decode(data, cv2.IMREAD_COLOR, "a JPEG")
    assert worker.decode(SMALL_PNG, cv2.IMREAD_COLOR).shape == (20, 30, 3)
    assert worker.started == 2


def test_a_decode_past_its_wall_time_is_killed_and_other_callers_go_on() -> None:
    worker = DecodeWorker(40_000_000, wall_seconds=0.5)
    slow = endless_progressive_jpeg(6000, 6000, 300)
    errors: list[Exception] = []
    started = threading.Event()

    def hostile() -> None:
        started.set()
        try:
            worker.decode(slow, cv2.IMREAD_COLOR, "a JPEG")
        except ImageError as exc:
            errors.append(exc)

    thread = threading.Thread(target=hostile)
    thread.start()
    started.wait(5)
    shape = worker.decode(SMALL_PNG, cv2.IMREAD_GRAYSCALE)  # waits its turn, then is served
    thread.join(10)
    assert shape.shape == (20, 30)
    assert [str(e) for e in errors] == ["a JPEG too slow to decode: over 0.5 s; the decode was stopped"]


def test_corrupt_data_past_a_good_header_is_unreadable_not_too_large(worker: DecodeWorker) -> None:
    data = bytearray(endless_progressive_jpeg(640, 480, 1))
    data[400:800] = os.urandom(400)
    with pytest.raises(ImageError) as error:
        worker.decode(bytes(data[:900]), cv2.IMREAD_COLOR, "a JPEG")
    assert not isinstance(error.value, ImageTooLargeError)
    assert worker.started == 1


def test_what_is_not_a_regular_file_is_never_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="a FIFO, not a regular file"):
        check_image_file(fifo)  # would block for ever in open() or read()
    with pytest.raises(ImageError, match="a device, not a regular file"):
        check_image_file("/dev/zero")
    with pytest.raises(ImageError, match="a directory, not a regular file"):
        check_image_file(tmp_path)


def test_a_huge_sparse_file_behind_a_small_header_is_refused_by_its_size(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse.jpg"
    with open(sparse, "wb") as handle:
        handle.write(endless_progressive_jpeg(64, 64, 1))
        handle.truncate(1 << 40)  # 1 TiB of holes
    with pytest.raises(ImageTooLargeError, match=r"a file of 1,099,512 MB; photos over 320 MB"):
        check_image_file(sparse)


@pytest.mark.slow
def test_predict_answers_every_hostile_file_in_one_line_and_goes_on(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    sparse = tmp_path / "sparse.jpg"
    sparse.write_bytes(endless_progressive_jpeg(64, 64, 1))
    os.truncate(sparse, 1 << 40)
    files = {"tiff.tif": ambiguous_tiff(8000, 8000), "tile.tif": huge_tile_tiff(), "ok.png": SMALL_PNG}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    paths = [str(fifo), "/dev/zero", str(sparse), str(tmp_path / "tiff.tif"), str(tmp_path / "tile.tif"),
             str(tmp_path / "missing.jpg"), str(tmp_path / "ok.png")]
    run = subprocess.run([sys.executable, "-m", "fer_edge", "predict", *paths], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["image"] for line in lines] == paths
    errors = [line.get("error", "") for line in lines]
    assert errors[0] == "a FIFO, not a regular file: only image files are read"
    assert errors[1] == "a device, not a regular file: only image files are read"
    assert errors[2].startswith("a file of 1,099,512 MB")
    assert errors[3].startswith("an ambiguous TIFF") and errors[4].startswith("a TIFF of 16x16 pixels")
    assert errors[5] == "cannot read it (No such file or directory)"
    assert lines[6] == {"image": paths[6], "faces": []}


@pytest.mark.slow
def test_a_photo_at_the_cap_costs_at_most_600_mb_and_10_s_of_cpu(tmp_path: Path) -> None:
    """The composite's six faces in a 39.7 MP JPEG, through predict's path in a fresh process:
    its peak RSS above idle, the decode worker's above its own idle (about 70 MB), CPU of both."""
    data, _ = composite()
    big = cv2.resize(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), (7280, 5460))
    photo = tmp_path / "cap.jpg"
    photo.write_bytes(cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    env = {**os.environ, "PYTHONPATH": str(ROOT / "scripts")}
    run = subprocess.run([sys.executable, "-m", "devkit.peak", "predict", str(photo)], capture_output=True,
                         text=True, env=env, timeout=120, cwd=ROOT)
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert figures["faces"] >= 6, figures  # the bounded scan still finds the faces
    assert figures["peak_above_idle_mb"] <= 600 and figures["worker_peak_mb"] - 70 <= 600, figures
    assert figures["cpu_s"] <= 10, figures
