"""Still images: faces from about 30 px up in a large photo, in a stable order, with either detector."""

from __future__ import annotations

import pytest
from devkit.media import composite
from fer_edge.config import Config, DetectorConfig
from fer_edge.photos import FacePredictor, ImageError


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
