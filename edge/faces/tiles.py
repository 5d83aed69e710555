"""Faces in a large still at a bounded working size: tiles of one size over a pyramid of scales.

A detector run on a whole 40 MP photo at the scale that finds 30 px faces costs about 2 GB
(YuNet holds some 80 MB of activations per megapixel of its input). Here it never sees more
than TILE x TILE pixels: the photo is cut into overlapping tiles at the finest scale, then
scaled down by STEP and tiled again, until it fits one tile. Each level keeps the faces of
one band of sizes, so every face is found whole, once:

- at a level, a face up to BAND px lies wholly inside some tile (tiles overlap by OVERLAP >
  BAND), and one that touches a tile's inner edge is left to the neighbour that holds it whole;
- a larger face is left to the next level, scaled down so that it is ``smallest`` px or more
  there (the least the detector finds reliably: 32 for YuNet, 48 for Haar); the last level
  (one tile) keeps every size.

Faces found twice (in the overlap of two tiles, or at the edge of two bands) are merged. Peak
memory is one tile's detector run and its resized copy, whatever the photo's size; the work
grows with the photo's pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import cv2
import numpy as np

from .base import Box

TILE = 1024
OVERLAP = 192
BAND = 144  # the largest face (tile px) a level keeps: a margin of 48 px within OVERLAP
EDGE = 2  # px: a box this close to a tile's inner edge may be cut by it
SAME_FACE_IOU = 0.4

Finder = Callable[[np.ndarray], list[Box]]


def spans(length: int) -> list[tuple[int, int]]:
    """Tile spans covering 0..length: TILE long (or the whole length), overlapping by OVERLAP or more."""
    if length <= TILE:
        return [(0, length)]
    starts = list(range(0, length - TILE, TILE - OVERLAP)) + [length - TILE]
    return [(start, start + TILE) for start in starts]


def pyramid_boxes(find: Finder, image: np.ndarray, scale: float, smallest: int = 32) -> list[Box]:
    """The boxes ``find`` reports over ``image`` scanned from ``scale`` down, in the image's pixels;
    ``smallest`` the least face (px) ``find`` sees reliably, which sets the step between levels."""
    height, width = image.shape[:2]
    boxes: list[Box] = []
    while True:
        size = max(1, round(width * scale)), max(1, round(height * scale))
        last = max(size) <= TILE
        for box in _level(find, image, scale, size, last):
            if not any(_iou(box, kept) > SAME_FACE_IOU for kept in boxes):
                boxes.append(box)
        if last:
            return boxes
        scale *= smallest / BAND


def _level(find: Finder, image: np.ndarray, scale: float, size: tuple[int, int], last: bool) -> Iterator[Box]:
    height, width = image.shape[:2]
    for y0, y1 in spans(size[1]):
        for x0, x1 in spans(size[0]):
            # the tile's source region, and the tile itself at this level's scale
            sx0, sy0 = math.floor(x0 * width / size[0]), math.floor(y0 * height / size[1])
            sx1, sy1 = math.ceil(x1 * width / size[0]), math.ceil(y1 * height / size[1])
            region = image[sy0:sy1, sx0:sx1]
            tile = region if region.shape[1::-1] == (x1 - x0, y1 - y0) else cv2.resize(
                region, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
            fx, fy = (sx1 - sx0) / (x1 - x0), (sy1 - sy0) / (y1 - y0)
            for bx, by, bw, bh in find(tile):
                if not last and max(bw, bh) > BAND:
                    continue  # the next level's
                cut = ((bx <= EDGE and x0 > 0) or (by <= EDGE and y0 > 0)
                       or (bx + bw >= x1 - x0 - EDGE and x1 < size[0])
                       or (by + bh >= y1 - y0 - EDGE and y1 < size[1]))
                if not cut:
                    yield (round(sx0 + bx * fx), round(sy0 + by * fy), round(bw * fx), round(bh * fy))


def _iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
