"""Still images decoded safely: the header is read first, and a picture over the pixel cap is never decoded.

OpenCV's ``imdecode`` allocates what the header declares: a 333-byte JPEG that declares
30000x30000 pixels costs 1.8 GB. So every photo (``POST /predict``, ``fer-edge predict``,
``fer-edge annotate`` of a photo) goes through here: the format is recognised by its signature
(only the six below ever reach OpenCV), the size is read from the header in pure Python, a
picture over ``max_pixels`` raises ImageTooLargeError, and a header that readers could take two
ways (a TIFF tag given twice, tiles larger than the image) is refused. That is the fast first
gate; the decode itself runs in a worker process with hard limits (fer_edge.decode_worker), one
at a time, so N hostile uploads at once cost one bounded decode, not N.

Pillow's lazy ``Image.open`` reads headers too, but it would add 6 MB of RSS and 22 MB of
wheels to the device for what fits in a hundred lines, it knows formats OpenCV does not (and
the reverse), and its WebP opener builds a libwebp decoder. The tests check these readers
against Pillow on generated images of every format.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from .decode_worker import DecodeWorker
from .errors import ImageError, ImageTooLargeError

Encoded = bytes | mmap.mmap  # an upload in memory, or a photo file mapped by check_image_file

DEFAULT_MAX_PIXELS = 40_000_000
FORMATS = "JPEG, PNG, BMP, WebP, GIF or TIFF"
# An uncompressed 16-bit RGBA TIFF is 8 bytes a pixel: no photo file at the cap is larger.
MAX_FILE_BYTES_PER_PIXEL = 8
_workers: dict[int, DecodeWorker] = {}
_workers_lock = threading.Lock()
# Frame headers of JPEG: SOF0-SOF15 less DHT (C4), JPG (C8) and DAC (CC).
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_TIFF_SIZES = {256: "ImageWidth", 257: "ImageLength", 322: "TileWidth", 323: "TileLength"}


@dataclass(frozen=True)
class ImageHeader:
    """What an image file declares before any pixel is decoded."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        """Width times height."""
        return self.width * self.height


def _unpack(fmt: str, data: Encoded, offset: int, what: str) -> tuple[int, ...]:
    try:
        return struct.unpack_from(fmt, data, offset)
    except struct.error:
        raise ImageError(f"a truncated {what} header") from None


def _jpeg(data: Encoded) -> tuple[int, int]:
    pos = 2
    while pos + 1 < len(data):
        if data[pos] != 0xFF:
            raise ImageError("a corrupt JPEG header (no marker where one belongs)")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
        elif marker in (0xD9, 0xDA):
            raise ImageError("a corrupt JPEG (image data before its frame header)")
        elif marker in _JPEG_FRAMES:
            height, width = _unpack(">HH", data, pos + 5, "JPEG")
            return width, height
        else:
            (length,) = _unpack(">H", data, pos + 2, "JPEG")
            if length < 2:
                raise ImageError("a corrupt JPEG header (segment length under 2)")
            pos += 2 + length
    raise ImageError("a truncated JPEG header (no frame header)")


def _png(data: Encoded) -> tuple[int, int]:
    if data[12:16] != b"IHDR":
        raise ImageError("a corrupt PNG (IHDR is not its first chunk)")
    width, height = _unpack(">II", data, 16, "PNG")
    return width, height


def _bmp(data: Encoded) -> tuple[int, int]:
    (dib_size,) = _unpack("<I", data, 14, "BMP")
    if dib_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        width, height = _unpack("<HH", data, 18, "BMP")
    else:
        width, height = _unpack("<ii", data, 18, "BMP")
    return width, abs(height)  # a negative height means top-down rows


def _gif(data: Encoded) -> tuple[int, int]:
    width, height, flags = _unpack("<HHB", data, 6, "GIF")
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # global colour table
    # The first frame may reach past the logical screen; the decoder allocates for both.
    while pos < len(data):
        block = data[pos]
        if block == 0x2C:  # image descriptor
            left, top, frame_width, frame_height = _unpack("<HHHH", data, pos + 1, "GIF")
            return max(width, left + frame_width), max(height, top + frame_height)
        if block != 0x21:  # only extensions may come before the first frame
            break
        pos += 2
        while pos < len(data) and data[pos]:  # sub-blocks, each led by its size
            pos += data[pos] + 1
        pos += 1
    raise ImageError("a GIF without a frame (truncated or corrupt)")


def _tiff(data: Encoded) -> tuple[int, int]:
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = _unpack(order + "I", data, 4, "TIFF")
    (count,) = _unpack(order + "H", data, ifd, "TIFF")
    size: dict[int, int] = {}
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        tag, kind, values = _unpack(order + "HHI", data, entry, "TIFF")
        if tag not in _TIFF_SIZES:
            continue
        # libtiff keeps the first of a repeated tag, other readers the last: refuse to guess
        if tag in size:
            raise ImageError(f"an ambiguous TIFF ({_TIFF_SIZES[tag]} given twice); nothing was decoded")
        if kind not in (3, 4) or values != 1:
            raise ImageError(f"a corrupt TIFF ({_TIFF_SIZES[tag]} is not one SHORT or LONG)")
        size[tag] = _unpack(order + ("H" if kind == 3 else "I"), data, entry + 8, "TIFF")[0]
    if 256 not in size or 257 not in size:
        raise ImageError("a TIFF whose first page declares no width or height")
    width, height = size[256], size[257]
    # libtiff allocates a whole tile: one larger than the (16-aligned) image costs beyond the cap
    tile = size.get(322, 0), size.get(323, 0)
    if tile[0] > _align16(width) or tile[1] > _align16(height):
        raise ImageError(f"a TIFF of {width}x{height} pixels in {tile[0]}x{tile[1]} tiles (tiles larger "
                         "than the image); nothing was decoded")
    return width, height


def _align16(value: int) -> int:
    return (value + 15) // 16 * 16


def _webp(data: Encoded) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: 14-bit sizes after the frame tag and start code
        if data[23:26] != b"\x9d\x01\x2a":
            raise ImageError("a corrupt WebP (no VP8 start code)")
        width, height = _unpack("<HH", data, 26, "WebP")
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":  # lossless: width-1 and height-1 in 14 bits each
        (bits,) = _unpack("<I", data, 21, "WebP")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: the canvas, 24 bits each, minus one
        low = _unpack("<HBHB", data, 24, "WebP")
        return low[0] + (low[1] << 16) + 1, low[2] + (low[3] << 16) + 1
    raise ImageError("a corrupt WebP (unknown first chunk)")


_READERS = (
    ("JPEG", (b"\xff\xd8\xff",), _jpeg),
    ("PNG", (b"\x89PNG\r\n\x1a\n",), _png),
    ("BMP", (b"BM",), _bmp),
    ("GIF", (b"GIF87a", b"GIF89a"), _gif),
    ("TIFF", (b"II*\x00", b"MM\x00*"), _tiff),
)


def image_format(data: Encoded) -> str | None:
    """The format the signature at the start of ``data`` names; None for anything else."""
    head = bytes(data[:12])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((name for name, signatures, _ in _READERS if head.startswith(signatures)), None)


def read_header(data: Encoded) -> ImageHeader:
    """The format and size an encoded image declares; ImageError if it is none of ours."""
    name = image_format(data)
    if name is None:
        raise ImageError("empty, not an image" if not data else f"not an image: use a {FORMATS}")
    reader = _webp if name == "WebP" else next(read for fmt, _, read in _READERS if fmt == name)
    width, height = reader(data)
    if width <= 0 or height <= 0:
        raise ImageError(f"a {name} that declares {width}x{height} pixels")
    return ImageHeader(name, width, height)


def check_header(data: Encoded, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageHeader:
    """``read_header``, and ImageTooLargeError when it declares more than ``max_pixels``."""
    header = read_header(data)
    if header.pixels > max_pixels:
        raise ImageTooLargeError(f"a {header.format} of {header.width}x{header.height} pixels "
                                 f"({header.pixels / 1e6:.1f} megapixels), over the limit of "
                                 f"{max_pixels / 1e6:g} megapixels (images.max_pixels); nothing was decoded")
    return header


def decode_worker(max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodeWorker:
    """The process-wide decode worker for ``max_pixels`` (started at its first decode)."""
    with _workers_lock:
        worker = _workers.get(max_pixels)
        if worker is None:
            worker = _workers[max_pixels] = DecodeWorker(max_pixels)
        return worker


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
                 flags: int = cv2.IMREAD_GRAYSCALE) -> np.ndarray:
    """The decoded picture (``flags`` as for cv2.imdecode; gray by default), header checked first.

    Raises ImageTooLargeError before decoding anything over ``max_pixels``, and ImageError for
    an unknown format, an ambiguous header, or data the worker cannot decode within its limits
    (fer_edge.decode_worker). One decode runs at a time.
    """
    header = check_header(data, max_pixels)
    return _decode(header, lambda worker: worker.decode(data, flags, f"a {header.format}"), max_pixels)


def decode_image_file(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS,
                      flags: int = cv2.IMREAD_GRAYSCALE) -> np.ndarray:
    """``decode_image`` of a photo file; only regular files are opened, and the worker reads it."""
    header = check_image_file(path, max_pixels)
    if header is None:
        raise ImageError(f"not an image: use a {FORMATS}")
    return _decode(header, lambda worker: worker.decode_file(os.fspath(path), flags, f"a {header.format}"),
                   max_pixels)


def _decode(header: ImageHeader, run: Callable[[DecodeWorker], np.ndarray], max_pixels: int) -> np.ndarray:
    image = run(decode_worker(max_pixels))
    if image.shape[0] * image.shape[1] > max_pixels:  # the decoder saw a size the header did not say
        raise ImageTooLargeError(f"a {header.format} that decodes to {image.shape[1]}x{image.shape[0]} "
                                 f"pixels, over the limit of {max_pixels / 1e6:g} megapixels")
    return image


def open_regular_file(path: str | Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file; ImageError naming what it is otherwise.

    FIFOs and devices (/dev/zero) are never read: opened without blocking, checked, then closed.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise ImageError(f"cannot read it ({exc.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket")
        raise ImageError(f"{kind}, not a regular file: only image files are read")
    return os.fdopen(fd, "rb")


def check_image_file(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageHeader | None:
    """The header of a photo file, checked against ``max_pixels``; None when it is not a photo (a video).

    ImageError for what is not a regular file, or a file larger than MAX_FILE_BYTES_PER_PIXEL
    bytes a pixel of the cap (a sparse file of terabytes).
    """
    with open_regular_file(path) as handle:
        if image_format(handle.read(12)) is None:
            return None
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_FILE_BYTES_PER_PIXEL * max_pixels:
            raise ImageTooLargeError(f"a file of {size / 1e6:,.0f} MB; photos over "
                                     f"{MAX_FILE_BYTES_PER_PIXEL * max_pixels / 1e6:,.0f} MB "
                                     f"({MAX_FILE_BYTES_PER_PIXEL} bytes a pixel of images.max_pixels) "
                                     "are not read")
        # Mapped, not read: a TIFF's first directory may sit after all of its pixels.
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return check_header(data, max_pixels)
