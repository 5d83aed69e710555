"""Still images: faces from about 30 px up in a large photo, in a stable order, with either detector."""

from __future__ import annotations

import ctypes
import platform
from pathlib import Path

import pytest
from devkit.media import composite
from fer_edge import photos
from fer_edge.config import Config, DetectorConfig
from fer_edge.photos import FacePredictor, ImageError, release_freed_heap


def predictor(kind: str) -> FacePredictor:
    return FacePredictor.from_config(Config(detector=DetectorConfig(type=kind)))


@pytest.fixture(scope="module")
def yunet() -> FacePredictor:
    return predictor("yunet")


def test_all_six_faces_of_40_to_150_px_in_a_large_photo(yunet: FacePredictor) -> None:
    data, centres = composite()
    result = yunet.predict(data)
    assert (result["width"], result["height"]) == (2048, 1536)
    boxes = [face["box"] for face in result["faces"]]
    assert len(boxes) == 6, boxes
    for cx, cy in centres:  # each face found where it is
        assert any(x <= cx <= x + w and y <= cy <= y + h for x, y, w, h in boxes), (cx, cy, boxes)
    widths = [w for _x, _y, w, _h in boxes]
    assert widths == sorted(widths, reverse=True)  # largest first


def test_the_order_is_the_same_every_time(yunet: FacePredictor) -> None:
    data, _ = composite()
    first = [face["box"] for face in yunet.predict(data)["faces"]]
    assert all([face["box"] for face in yunet.predict(data)["faces"]] == first for _ in range(3))


def test_haar_scans_a_still_at_full_resolution() -> None:
    """The video loop's 320 px working width would hide faces under 154 px of a 2048 px photo."""
    data, centres = composite()
    boxes = [face["box"] for face in predictor("haar").predict(data)["faces"]]
    small = centres[0]  # the 40 px face
    assert any(x <= small[0] <= x + w and y <= small[1] <= y + h for x, y, w, h in boxes), boxes


def test_bytes_that_are_no_image_are_refused(yunet: FacePredictor) -> None:
    with pytest.raises(ImageError, match="not an image"):
        yunet.predict(b"plain text, not an image")
    with pytest.raises(ImageError, match="a GIF without a frame"):
        yunet.predict(b"GIF89a, but not really")


def test_every_photo_job_ends_by_giving_freed_heap_back(yunet: FacePredictor, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A 40 MP photo left some 60 MB in each server thread's glibc arena until trimmed (docs/web.md)."""
    trims: list[int] = []
    monkeypatch.setattr(photos, "release_freed_heap", lambda: trims.append(1) or True)
    data, _ = composite()
    yunet.predict(data)
    assert len(trims) == 1
    (tmp_path / "photo.jpg").write_bytes(data)
    yunet.predict_file(tmp_path / "photo.jpg")
    assert len(trims) == 2
    with pytest.raises(ImageError):
        yunet.predict(b"plain text, not an image")
    assert len(trims) == 3


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_release_freed_heap_gives_glibc_free_pages_back() -> None:
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    chunk, count = 64 << 10, 512  # 32 MB in chunks under the mmap threshold: heap memory
    chunks = [libc.malloc(chunk) for _ in range(count)]
    for address in chunks:
        ctypes.memset(address, 1, chunk)
    for address in chunks[:-1]:  # the last one holds the heap's top: glibc trims nothing on its own
        libc.free(address)
    before = rss_kb()
    assert release_freed_heap()
    returned = before - rss_kb()
    libc.free(chunks[-1])
    assert returned > 24_000, f"{returned} kB returned of 32 MB freed"


def rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
