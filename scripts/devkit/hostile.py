"""Hostile image files made on the fly: headers that readers take two ways, tiles, endless scans.

Each is small on disk and costly to a decoder that believes it; the tests and
scripts/bench_untrusted.py feed them to fer_edge's header gate and its decode worker.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

# TIFF field types
SHORT, LONG = 3, 4


def _tiff(entries: list[tuple[int, int, int]], data: bytes) -> bytes:
    """A little-endian TIFF: the IFD (tag, type, value) in the given order, then ``data``."""
    ifd_at = 8
    data_at = ifd_at + 2 + 12 * len(entries) + 4
    head = b"II*\x00" + struct.pack("<I", ifd_at) + struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        value = data_at if value == -1 else value  # -1: the offset of the data
        packed = struct.pack("<HI", value, 0)[:4] if kind == SHORT else struct.pack("<I", value)
        head += struct.pack("<HHI", tag, kind, 1) + packed
    return head + b"\x00\x00\x00\x00" + data


def _zeros_deflated(size: int) -> bytes:
    squeeze = zlib.compressobj(9)
    block = bytes(1 << 20)
    parts = [squeeze.compress(block) for _ in range(size >> 20)]
    parts.append(squeeze.compress(bytes(size & ((1 << 20) - 1))))
    parts.append(squeeze.flush())
    return b"".join(parts)


def ambiguous_tiff(width: int, height: int, last: tuple[int, int] = (16, 16)) -> bytes:
    """A gray deflate TIFF that gives ImageWidth/ImageLength twice: ``width`` x ``height`` first
    (what libtiff uses, with a strip of that many zero pixels), ``last`` after (what a reader that
    keeps the last value sees). 8000x8000 is 62 KB."""
    strip = _zeros_deflated(width * height)
    entries = [(256, LONG, width), (257, LONG, height), (256, SHORT, last[0]), (257, SHORT, last[1]),
               (258, SHORT, 8), (259, SHORT, 8), (262, SHORT, 1), (273, LONG, -1), (277, SHORT, 1),
               (278, LONG, height), (279, LONG, len(strip))]
    return _tiff(entries, strip)


def huge_tile_tiff(tile: tuple[int, int] = (16384, 16368), size: int = 16) -> bytes:
    """A ``size`` x ``size`` gray deflate TIFF stored as one tile of ``tile`` pixels."""
    data = _zeros_deflated(tile[0] * tile[1])
    entries = [(256, SHORT, size), (257, SHORT, size), (258, SHORT, 8), (259, SHORT, 8), (262, SHORT, 1),
               (277, SHORT, 1), (322, LONG, tile[0]), (323, LONG, tile[1]), (324, LONG, -1),
               (325, LONG, len(data))]
    return _tiff(entries, data)


def endless_progressive_jpeg(width: int, height: int, repeats: int) -> bytes:
    """A progressive JPEG of one flat colour whose last scan is repeated ``repeats`` times: each
    repeat costs the decoder a pass over every block of the image, the file a few bytes."""
    image = Image.fromarray(np.full((height, width, 3), (40, 120, 200), np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", progressive=True, quality=90)
    data = buffer.getvalue()
    last_scan = data.rindex(b"\xff\xda")
    return data[:last_scan] + data[last_scan:-2] * repeats + b"\xff\xd9"
