"""Still images: faces from about 30 px up in a large photo, in a stable order, with either detector."""

from __future__ import annotations

import cv2
import pytest
from fer_edge.config import Config, DetectorConfig
from fer_edge.photos import FacePredictor, ImageError
from skimage import data as skimage_data
from support.media import astronaut_bgr

# Where a face sits in skimage.data.astronaut() (512x512), as Haar boxes it.
ASTRONAUT_FACE = (177, 66, 95, 95)
SIDES = (40, 55, 70, 90, 120, 150)  # the six faces' widths in the composite, in pixels


def composite() -> tuple[bytes, list[tuple[int, int]]]:
    """A 2048x1536 PNG with six astronaut faces of 40 to 150 px, and each face's centre."""
    # a real, faceless scene behind them (scikit-image's coffee cup, public domain)
    canvas = cv2.resize(cv2.cvtColor(skimage_data.coffee(), cv2.COLOR_RGB2BGR), (2048, 1536))
    fx, fy, side0, _ = ASTRONAUT_FACE
    # the head and shoulders around the face: twice its side, centred on it
    top, left = fy + side0 // 2 - side0, fx + side0 // 2 - side0
    head = astronaut_bgr()[top:top + 2 * side0, left:left + 2 * side0]
    centres = []
    for i, side in enumerate(SIDES):
        small = cv2.resize(head, (2 * side, 2 * side), interpolation=cv2.INTER_AREA)
        x, y = 100 + (i % 3) * 650, 150 + (i // 3) * 700
        canvas[y:y + 2 * side, x:x + 2 * side] = small
        centres.append((x + side, y + side))
    ok, png = cv2.imencode(".png", canvas)
    assert ok
    return png.tobytes(), centres


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
