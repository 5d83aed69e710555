"""fer_edge.faces: Haar and YuNet on public-domain scikit-image photos, order and limits, crops."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
from fer_edge.config import DetectorConfig
from fer_edge.errors import ModelError
from fer_edge.faces import Face, HaarFaceDetector, YuNetFaceDetector, cascade_path, crop_face, select
from fer_edge.faces.crops import percentiles
from fer_edge.faces.factory import build_detector
from fer_edge.faces.yunet import yunet_unavailable
from fer_edge.tracking import iou

try:
    from skimage import data as skdata
except ImportError:
    skdata = None

# Where Haar finds Eileen Collins' face in skimage.data.astronaut() (512x512).
ASTRONAUT_FACE = (177, 66, 95, 95)


def _gray(name: str) -> np.ndarray:
    if skdata is None:
        pytest.fail("scikit-image is needed for the face fixtures: pip install scikit-image")
    image = getattr(skdata, name)()
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return _gray("astronaut")


@pytest.fixture(scope="module")
def detector() -> HaarFaceDetector:
    return HaarFaceDetector(DetectorConfig(type="haar"))


def _assert_one_face_at(faces: list[Face], expected: tuple[int, int, int, int]) -> None:
    assert len(faces) == 1, faces
    # Scanning at 1.2x scale steps quantizes box sizes; a box not mapped back would miss entirely.
    assert iou(faces[0].box, expected) > 0.7, (faces[0].box, expected)


def test_defaults_find_the_astronaut(detector: HaarFaceDetector, astronaut: np.ndarray) -> None:
    _assert_one_face_at(detector.detect(astronaut), ASTRONAUT_FACE)


def test_full_resolution_finds_the_astronaut(astronaut: np.ndarray) -> None:
    full = HaarFaceDetector(DetectorConfig(type="haar", working_width=0))
    _assert_one_face_at(full.detect(astronaut), ASTRONAUT_FACE)


def test_downscaled_boxes_map_back_to_source_pixels(astronaut: np.ndarray) -> None:
    # Textured noise, not a flat fill: a frame that is mostly one grey level defeats
    # histogram equalization, which no camera frame does.
    canvas = np.random.default_rng(0).integers(0, 256, (720, 1280), dtype=np.uint8)
    canvas[150:662, 600:1112] = astronaut
    x, y, w, h = ASTRONAUT_FACE
    halved = HaarFaceDetector(DetectorConfig(type="haar", working_width=640))
    _assert_one_face_at(halved.detect(canvas), (x + 600, y + 150, w, h))


@pytest.mark.parametrize("name", ["camera", "coffee"])
def test_no_face_in_faceless_photos(detector: HaarFaceDetector, name: str) -> None:
    assert detector.detect(_gray(name)) == []


def test_haar_takes_colour_frames_too(detector: HaarFaceDetector, astronaut: np.ndarray) -> None:
    _assert_one_face_at(detector.detect(cv2.cvtColor(astronaut, cv2.COLOR_GRAY2BGR)), ASTRONAUT_FACE)


@pytest.mark.parametrize("image", [np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10), np.float32)])
def test_detect_rejects_other_frames(detector: HaarFaceDetector, image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="HxW or HxWx3 uint8"):
        detector.detect(image)


def test_missing_cascade_names_the_remedy(tmp_path) -> None:
    with pytest.raises(ModelError, match="missing or empty; set detector.cascade"):
        HaarFaceDetector(DetectorConfig(type="haar", cascade=str(tmp_path / "missing.xml")))


def test_corrupt_cascade_names_the_remedy(tmp_path) -> None:
    corrupt = tmp_path / "corrupt.xml"
    corrupt.write_text("<opencv_storage>not a cascade</opencv_storage>")
    with pytest.raises(ModelError, match="could not be loaded.*set detector.cascade"):
        HaarFaceDetector(DetectorConfig(type="haar", cascade=str(corrupt)))


def test_the_shipped_cascade_works_without_cv2_data(monkeypatch, astronaut: np.ndarray) -> None:
    """Distro OpenCV builds (Debian's, JetPack's) have no cv2.data: the package ships the cascade."""
    monkeypatch.delattr(cv2, "data", raising=False)
    assert cascade_path().name == "haarcascade_frontalface_default.xml" and cascade_path().is_file()
    _assert_one_face_at(HaarFaceDetector(DetectorConfig(type="haar")).detect(astronaut), ASTRONAUT_FACE)


def test_opencv_without_cascade_classifier_names_the_remedy(monkeypatch) -> None:
    monkeypatch.delattr(cv2, "CascadeClassifier")
    with pytest.raises(ModelError, match="opencv-python-headless<5"):
        HaarFaceDetector()


# --- YuNet ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def astronaut_bgr() -> np.ndarray:
    if skdata is None:
        pytest.fail("scikit-image is needed for the face fixtures: pip install scikit-image")
    return cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)


def test_yunet_finds_the_astronaut_with_a_square_haar_like_box(astronaut_bgr: np.ndarray) -> None:
    faces = YuNetFaceDetector().detect(astronaut_bgr)
    assert len(faces) == 1
    x, y, w, h = faces[0].box
    assert w == h  # square, as FER2013's faces are
    assert iou(faces[0].box, ASTRONAUT_FACE) > 0.6, faces[0].box  # placed like Haar's box


def test_yunet_finds_a_40_px_face_in_a_640x480_frame(astronaut_bgr: np.ndarray) -> None:
    """The default detector at default settings finds a face 40 px wide in a VGA frame."""
    x, y, w, h = ASTRONAUT_FACE
    scale = 40 / w
    small = cv2.resize(astronaut_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[200:200 + small.shape[0], 300:300 + small.shape[1]] = small
    faces = YuNetFaceDetector(DetectorConfig()).detect(frame)
    assert len(faces) == 1 and 32 <= faces[0].box[2] <= 50, faces


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all"])
def test_missing_or_corrupt_yunet_model_names_the_remedy(tmp_path, content: bytes) -> None:
    path = tmp_path / "yunet.onnx"
    if content:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=r"YuNet model .* (missing or empty|could not be loaded)"):
        YuNetFaceDetector(model_path=path)


def test_faces_come_largest_first_with_ties_by_position_and_limits() -> None:
    boxes = [(300, 10, 40, 40), (10, 10, 80, 80), (100, 10, 40, 40), (5, 200, 20, 20)]
    assert [f.box for f in select(boxes, 640, 480, min_face=30, max_faces=0)] == \
        [(10, 10, 80, 80), (100, 10, 40, 40), (300, 10, 40, 40)]  # the 20 px face is under min_face
    assert [f.box for f in select(boxes, 640, 480, min_face=10, max_faces=2)] == \
        [(10, 10, 80, 80), (100, 10, 40, 40)]
    assert [f.box for f in select([(600, 0, 80, 80)], 640, 480, 30, 0)] == [(600, 0, 40, 80)]  # clipped


def test_crop_is_48x48_uint8(astronaut: np.ndarray) -> None:
    crop = crop_face(astronaut, Face(ASTRONAUT_FACE))
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    x, y, w, h = ASTRONAUT_FACE
    expected = cv2.resize(astronaut[y:y + h, x:x + w], (48, 48), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(crop, expected)


@pytest.mark.parametrize("box", [(-20, -10, 60, 60), (480, 470, 60, 60), (0, 0, 512, 512)])
def test_crop_at_the_frame_edge(astronaut: np.ndarray, box: tuple[int, int, int, int]) -> None:
    crop = crop_face(astronaut, Face(box), margin=0.2)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8


def test_crop_outside_the_frame_is_an_error(astronaut: np.ndarray) -> None:
    with pytest.raises(ValueError, match="outside"):
        crop_face(astronaut, Face((600, 600, 50, 50)))


def test_crop_takes_a_bare_box(astronaut: np.ndarray) -> None:
    np.testing.assert_array_equal(crop_face(astronaut, ASTRONAUT_FACE),
                                  crop_face(astronaut, Face(ASTRONAUT_FACE)))


def test_small_face_is_upsampled_to_size() -> None:
    gray = np.arange(100, dtype=np.uint8).reshape(10, 10)
    assert crop_face(gray, Face((2, 2, 6, 6)), size=48).shape == (48, 48)


def test_a_dim_face_gets_the_label_of_the_same_face_at_normal_contrast(astronaut: np.ndarray) -> None:
    """12-bit data in a 16-bit image, read as 8-bit: grey levels 0..15. crop_face stretches the
    crop back to full range, so the classifier sees the face as at normal contrast (the models
    shipped until 2026-12-06 called the unstretched crop angry; the current ones, trained with
    low light, read it right either way)."""
    from fer_edge.classifier import TFLiteExpressionClassifier

    classifier = TFLiteExpressionClassifier()
    dim = (astronaut.astype(np.uint16) << 4 >> 8).astype(np.uint8)
    normal_crop = crop_face(astronaut, ASTRONAUT_FACE)
    x, y, w, h = ASTRONAUT_FACE
    as_is = cv2.resize(dim[y:y + h, x:x + w], (48, 48), interpolation=cv2.INTER_AREA)
    restored = crop_face(dim, ASTRONAUT_FACE)
    assert int(as_is.max()) - int(as_is.min()) <= 15 and int(restored.max()) - int(restored.min()) >= 200
    assert np.corrcoef(restored.ravel(), normal_crop.ravel())[0, 1] > 0.95
    assert classifier.classify(restored).label == classifier.classify(normal_crop).label


@pytest.mark.parametrize("q", [(1, 99), (0, 100), (50,), (0.5, 99.9), (33.3, 66.7)])
def test_histogram_percentiles_are_numpys(q: tuple[float, ...]) -> None:
    rng = np.random.default_rng(7)
    images = [np.full((48, 48), 7, np.uint8), np.full((48, 48), 255, np.uint8), np.zeros((1, 1), np.uint8),
              rng.integers(3, 5, (48, 48), dtype=np.uint8),
              rng.normal(100, 3, (48, 48)).clip(0, 255).astype(np.uint8),
              rng.integers(0, 256, (48, 48), dtype=np.uint16)]  # not uint8: np.percentile's own answer
    images += [rng.integers(0, rng.integers(1, 257), rng.integers(1, 60, 2), dtype=np.uint8)
               for _ in range(300)]
    for image in images:
        np.testing.assert_allclose(percentiles(image, q), np.percentile(image, q), rtol=0, atol=1e-9,
                                   err_msg=f"{image.shape} {image.dtype}")


def test_a_crop_of_normal_contrast_is_left_as_it_is(astronaut: np.ndarray) -> None:
    x, y, w, h = ASTRONAUT_FACE
    expected = cv2.resize(astronaut[y:y + h, x:x + w], (48, 48), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(crop_face(astronaut, ASTRONAUT_FACE), expected)


def test_an_opencv_too_old_for_yunet_is_named_with_the_remedy(monkeypatch) -> None:
    """Debian 12's OpenCV 4.6 has FaceDetectorYN but fails on the 2023 model at the first frame."""
    monkeypatch.setattr(cv2, "__version__", "4.6.0")
    with pytest.raises(ModelError, match=r"OpenCV 4\.6\.0 cannot run YuNet.*4\.8 or newer.*type = \"haar\""):
        YuNetFaceDetector()


@pytest.mark.parametrize("size", [(4001, 33), (2000, 20), (1280, 12), (640, 8), (33, 4001), (2000, 60)])
def test_yunet_survives_thin_images(size: tuple[int, int]) -> None:
    """YuNet returns rows of inf for images a few pixels high: no error, and every box it keeps
    lies inside the image (noise may still look like a face)."""
    width, height = size
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    detector = YuNetFaceDetector(DetectorConfig(min_face=8))
    for working in (None, width, round(width * 0.8)):
        for face in detector.detect(image, working_width=working):
            x, y, w, h = face.box
            assert 0 <= x and 0 <= y and 8 <= w and 8 <= h and x + w <= width and y + h <= height


@pytest.mark.parametrize(("version", "has_api", "runs"), [
    ("4.5.4", True, False), ("4.7.0", True, False), ("4.5.1", False, False), ("4.8.0", True, True),
    ("4.12.0", True, True)])
def test_yunet_is_chosen_by_the_opencv_version(version: str, has_api: bool, runs: bool) -> None:
    reason = yunet_unavailable(version, has_api)
    assert (reason is None) == runs
    if reason:
        assert f"OpenCV {version} cannot run YuNet" in reason and "4.8 or newer" in reason


def test_an_opencv_too_old_for_yunet_falls_back_to_haar_with_a_warning(monkeypatch, caplog) -> None:
    """JetPack 5's OpenCV 4.5: the daemon runs on Haar instead of stopping."""
    monkeypatch.setattr(cv2, "__version__", "4.5.4")
    with caplog.at_level(logging.WARNING, "fer_edge.faces"):
        detector = build_detector(DetectorConfig(type="yunet"))
    assert isinstance(detector, HaarFaceDetector) and detector.settings.type == "haar"
    assert len(caplog.records) == 1 and "OpenCV 4.5.4 cannot run YuNet" in caplog.records[0].getMessage()
    monkeypatch.undo()
    assert isinstance(build_detector(DetectorConfig(type="yunet")), YuNetFaceDetector)
