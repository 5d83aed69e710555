"""fer_edge.imagefile: header sizes against Pillow's, the cap before any decode, one decode at a time."""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from devkit.images import flat_png, header_only_jpeg
from fer_edge import imagefile
from fer_edge.errors import ImageError, ImageTooLargeError
from fer_edge.imagefile import check_image_file, decode_image, read_header
from PIL import Image

# (Pillow format, save options, our name): every format we let OpenCV decode, in its variants.
VARIANTS = [
    ("JPEG", {}, "JPEG"), ("JPEG", {"progressive": True}, "JPEG"), ("PNG", {}, "PNG"), ("BMP", {}, "BMP"),
    ("GIF", {}, "GIF"), ("TIFF", {}, "TIFF"), ("TIFF", {"compression": "tiff_lzw"}, "TIFF"),
    ("WEBP", {"lossless": True}, "WebP"), ("WEBP", {"quality": 60}, "WebP"),
    ("WEBP", {"exif": b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00"}, "WebP"),  # extended (VP8X)
]


def encode(fmt: str, options: dict[str, Any], width: int, height: int) -> bytes:
    image = np.random.default_rng(width * height).integers(0, 255, (height, width, 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt, options, name", VARIANTS)
@pytest.mark.parametrize("width, height", [(1, 1), (37, 19), (641, 333), (3001, 17)])
def test_header_sizes_agree_with_pillow_and_with_the_decode(fmt: str, options: dict[str, Any], name: str,
                                                            width: int, height: int) -> None:
    data = encode(fmt, options, width, height)
    header = read_header(data)
    assert (header.format, header.width, header.height) == (name, *Image.open(io.BytesIO(data)).size)
    assert decode_image(data).shape == (height, width)


def test_a_header_only_jpeg_of_30000x30000_is_refused_before_any_decode(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decode(*args: Any) -> None:
        raise AssertionError("the decode worker saw an image over the cap")

    monkeypatch.setattr(imagefile, "decode_worker", no_decode)
    data = header_only_jpeg(30000, 30000)
    assert len(data) < 400
    with pytest.raises(ImageTooLargeError) as error:
        decode_image(data)
    assert str(error.value) == ("a JPEG of 30000x30000 pixels (900.0 megapixels), over the limit of 40 "
                                "megapixels (images.max_pixels); nothing was decoded")


def test_a_large_flat_png_is_refused_and_one_under_the_cap_decodes() -> None:
    with pytest.raises(ImageTooLargeError, match="a PNG of 8000x6000 pixels"):
        decode_image(flat_png(8000, 6000))
    assert decode_image(flat_png(8000, 6000), max_pixels=48_000_000).shape == (6000, 8000)


@pytest.mark.parametrize("data, message", [
    (b"", "empty, not an image"),
    (b"hello, world", "not an image: use a JPEG, PNG, BMP, WebP, GIF or TIFF"),
    (b"P5\n30000 30000\n255\n", "not an image"),  # OpenCV decodes PGM; we do not let it
    (b"\xff\xd8\xff\xe0\x00", "a truncated JPEG header"),
    (b"\xff\xd8\xff\xda\x00\x08", "a corrupt JPEG (image data before its frame header)"),
    (b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x00\x00\x10\x03", "a JPEG that declares 16x0 pixels"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00", "a truncated PNG header"),
    (b"GIF89a\x10\x00\x10\x00\x00\x00\x00\x3b", "a GIF without a frame"),
    (b"II*\x00\xff\xff\xff\x00", "a truncated TIFF header"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 \x00", "a corrupt WebP (no VP8 start code)"),
])
def test_what_is_not_one_of_our_images_is_an_image_error(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=re.escape(message)) as error:
        decode_image(data)
    assert not isinstance(error.value, ImageTooLargeError)


def test_a_gif_frame_larger_than_its_screen_counts_at_the_frame_size() -> None:
    data = encode("GIF", {}, 20, 10)
    # the first image descriptor: 0x2C, left, top, width, height; make the frame 20000 wide
    at = data.index(b"\x2c\x00\x00\x00\x00\x14\x00\x0a\x00")
    huge = data[:at + 5] + (20000).to_bytes(2, "little") + data[at + 7:]
    assert read_header(huge).width == 20000


def test_a_truncated_body_after_a_good_header_is_an_image_error() -> None:
    ok, png = cv2.imencode(".png", np.full((64, 64), 100, np.uint8))
    with pytest.raises(ImageError, match="a PNG that OpenCV cannot decode"):
        decode_image(png.tobytes()[:60])


def test_decodes_from_many_threads_share_one_worker_and_each_gets_its_own_picture() -> None:
    # one request at a time on the worker's pipes: interleaved requests would garble the pictures
    images = {size: encode("PNG", {}, *size) for size in [(1500, 1000), (640, 480), (33, 900), (900, 33)]}
    started = threading.Barrier(len(images), timeout=10)
    shapes: dict[tuple[int, int], set[tuple[int, ...]]] = {size: set() for size in images}

    def decode(size: tuple[int, int]) -> None:
        started.wait()
        for _ in range(3):
            shapes[size].add(decode_image(images[size]).shape)

    before = imagefile.decode_worker().started
    threads = [threading.Thread(target=decode, args=(size,)) for size in images]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert shapes == {(w, h): {(h, w)} for w, h in images}
    assert imagefile.decode_worker().started - before <= 1  # none was killed: at most the first start


def test_photo_files_are_checked_and_videos_pass(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.jpg"
    bomb.write_bytes(header_only_jpeg(30000, 30000))
    with pytest.raises(ImageTooLargeError):
        check_image_file(bomb)
    photo = tmp_path / "small.tif"
    photo.write_bytes(encode("TIFF", {}, 30, 20))
    assert check_image_file(photo) == read_header(photo.read_bytes())
    video = tmp_path / "clip.avi"
    video.write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST")
    assert check_image_file(video) is None
