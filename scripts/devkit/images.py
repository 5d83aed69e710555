"""Hostile and ordinary photos made on the fly: headers that declare huge pictures, large flat PNGs."""

from __future__ import annotations

import struct
import zlib


def header_only_jpeg(width: int, height: int) -> bytes:
    """A JPEG of a few hundred bytes whose frame header declares ``width`` x ``height`` (no real scan)."""
    # A quantisation table and a baseline frame header with three components, then one
    # empty scan: enough for a decoder to believe the size and allocate for it.
    dqt = b"\xff\xdb\x00\x43\x00" + bytes(range(1, 65))
    sof = (b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", height, width)
           + b"\x03\x01\x11\x00\x02\x11\x00\x03\x11\x00")
    dht = b"\xff\xc4\x00\x1f\x00" + bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]) + bytes(range(12))
    sos = b"\xff\xda\x00\x0c\x03\x01\x00\x02\x00\x03\x00\x00\x3f\x00"
    return b"\xff\xd8" + dqt + sof + dht + sos + b"\x00" * 64 + b"\xff\xd9"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def flat_png(width: int, height: int) -> bytes:
    """A valid gray PNG of one flat colour, compressed row by row: megabytes for hundreds of megapixels."""
    squeeze = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0, then the row's pixels
    rows = 256
    block = row * rows
    parts = [squeeze.compress(block) for _ in range(height // rows)]
    parts.append(squeeze.compress(row * (height % rows)))
    parts.append(squeeze.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"".join(parts))
            + _chunk(b"IEND", b""))
