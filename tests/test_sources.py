"""Frame sources and the capture thread, on small generated clips and fake cameras."""

from __future__ import annotations

import sys
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from fer_edge.errors import SourceError
from fer_edge.sources import (
    Frame,
    FrameGrabber,
    GStreamerSource,
    NetworkStreamSource,
    OpenCVCameraSource,
    Picamera2Source,
    VideoFileSource,
    csi_pipeline,
    gstreamer_available,
    is_valid_image,
    open_source,
    to_gray,
)

MARK_STEP = 16  # frame i carries a white mark at column i * MARK_STEP of a black top stripe


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition until it holds; fail the test if it does not within timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.002)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    try:
        from skimage import data
    except ImportError:
        pytest.fail("scikit-image is missing: pip install scikit-image")
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def write_clip(path: Path, face: np.ndarray, frames: int, fps: float, size: int = 512) -> Path:
    """Write an mp4v/MJPG clip whose face shifts each frame and whose frame number is marked."""
    fourcc = "MJPG" if path.suffix == ".avi" else "mp4v"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (size, size))
    assert writer.isOpened(), f"this OpenCV cannot write {fourcc} into {path.suffix}"
    base = cv2.resize(face, (size, size))
    for i in range(frames):
        image = np.roll(base, 4 * i, axis=1)
        image[:24] = 0
        image[:24, i * MARK_STEP : i * MARK_STEP + 12] = 255
        writer.write(image)
    writer.release()
    return path


def mark_of(image: np.ndarray) -> int:
    """The frame number write_clip marked into an image."""
    bright = np.flatnonzero(to_gray(image)[4:20].mean(axis=0) > 128)
    return int(round((bright.mean() - 5.5) / MARK_STEP))


@pytest.fixture(scope="module")
def clip(astronaut: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clips") / "astronaut.mp4", astronaut, frames=30, fps=25)


@pytest.fixture(scope="module")
def fast_clip(astronaut: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clips") / "fast.avi", astronaut, frames=30, fps=150, size=480)


class ScriptedSource:
    """A fake source: read() plays items (an exception instance is raised), then repeats `after`.

    open_plan says which open() calls succeed, in order; once it runs out every open succeeds.
    """

    def __init__(self, items: list[object], *, is_live: bool = True, after: object = "frame",
                 open_plan: list[bool] | None = None, period: float = 0.0) -> None:
        self.items, self.is_live, self.after, self.period = list(items), is_live, after, period
        self.open_plan = list(open_plan or [])
        self.description = "scripted source"
        self.fps = 100.0
        self.opens: list[float] = []
        self.closes = 0
        self.up_at_open: list[bool] = []
        self.up_at_read: list[bool] = []
        self.grabber: FrameGrabber | None = None
        self.is_open = False

    def open(self) -> None:
        self.opens.append(time.monotonic())
        if self.grabber is not None:
            self.up_at_open.append(self.grabber.camera_up)
        if self.open_plan and not self.open_plan.pop(0):
            raise SourceError("scripted camera cannot be opened: plug it in")
        self.is_open = True

    def read(self) -> np.ndarray | None:
        assert self.is_open, "read() on a closed source"
        if self.grabber is not None:
            self.up_at_read.append(self.grabber.camera_up)
        if self.period:
            time.sleep(self.period)  # a camera's frame interval, not synchronisation
        item = self.items.pop(0) if self.items else self.after
        if isinstance(item, Exception):
            raise item
        return np.full((4, 6, 3), 7, np.uint8) if isinstance(item, str) and item == "frame" else item  # type: ignore[return-value]

    def close(self) -> None:
        self.closes += 1
        self.is_open = False


# --- spec parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "kind", "live"),
    [
        ("clip.mp4", VideoFileSource, False),
        ("videos/clip", VideoFileSource, False),
        ("file:clip", VideoFileSource, False),
        ("0", OpenCVCameraSource, True),
        ("/dev/video2", OpenCVCameraSource, True),
        ("/dev/v4l/by-id/usb-cam-video-index0", OpenCVCameraSource, True),
        ("rtsp://cam.local/stream", NetworkStreamSource, True),
        ("https://cam.local/video.mjpg", NetworkStreamSource, True),
        ("csi", GStreamerSource, True),
        ("gst:videotestsrc ! appsink", GStreamerSource, True),
        ("picamera2", Picamera2Source, True),
    ],
)
def test_spec_selects_the_source(spec: str, kind: type, live: bool) -> None:
    source = open_source(spec)
    assert isinstance(source, kind)
    assert source.is_live is live


def test_camera_index_and_path() -> None:
    by_index = open_source("0", width=320, height=240, fps=15)
    assert isinstance(by_index, OpenCVCameraSource)
    assert (by_index.device, by_index.width, by_index.height, by_index.requested_fps) == (0, 320, 240, 15)
    assert by_index.description == "camera /dev/video0"
    assert open_source("/dev/video2").device == "/dev/video2"  # type: ignore[attr-defined]
    assert open_source("file:clip").path == Path("clip")  # type: ignore[attr-defined]


def test_csi_builds_a_gray8_pipeline() -> None:
    source = open_source("csi", width=1280, height=720, fps=60)
    assert isinstance(source, GStreamerSource)
    assert source.pipeline == (
        "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=60/1,"
        "format=NV12 ! nvvidconv ! video/x-raw,format=GRAY8 ! appsink drop=true max-buffers=1 sync=false"
    )
    assert open_source("csi:1").pipeline == csi_pipeline(1, 640, 480, 30)  # type: ignore[attr-defined]


def test_gst_pipeline_is_used_verbatim() -> None:
    pipeline = "v4l2src device=/dev/video1 ! videoconvert ! video/x-raw,format=BGR ! appsink"
    assert open_source(f"gst:{pipeline}").pipeline == pipeline  # type: ignore[attr-defined]


def test_stream_description_hides_the_password() -> None:
    source = open_source("rtsp://admin:hunter2@cam.local:554/live")
    assert "hunter2" not in source.description
    assert "rtsp://admin:***@cam.local:554/live" in source.description


@pytest.mark.parametrize("spec", ["webcam", "picam", "csi:left", "", "gst:"])
def test_unknown_spec_is_rejected(spec: str) -> None:
    with pytest.raises(SourceError, match="unknown source|empty pipeline") as info:
        open_source(spec)
    if spec != "gst:":
        assert "file:PATH" in str(info.value) and "rtsp://" in str(info.value)


def test_to_gray() -> None:
    bgr = np.zeros((5, 7, 3), np.uint8)
    bgr[..., 2] = 255
    assert to_gray(bgr).shape == (5, 7) and to_gray(bgr)[0, 0] == 76  # red's luma
    gray = np.ones((5, 7), np.uint8)
    assert to_gray(gray) is gray
    with pytest.raises(ValueError, match="shape"):
        to_gray(np.zeros((5, 7, 2), np.uint8))


# --- opening: errors name the cause and the remedy --------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"video file .*nope\.mp4 not found; check the path"):
        open_source(str(tmp_path / "nope.mp4")).open()


@pytest.mark.parametrize("content", [b"", bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8))],
                         ids=["empty", "random-bytes"])
def test_unreadable_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=r"broken\.mp4 is not a readable video.*ffmpeg .*libx264"):
        open_source(str(path)).open()


def test_file_without_frames(tmp_path: Path) -> None:
    path = tmp_path / "zero.avi"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 64)).release()
    with pytest.raises(SourceError, match=r"zero\.avi is not a readable video \(no frame decoded\)"):
        open_source(str(path)).open()


def test_camera_that_cannot_be_opened() -> None:
    with pytest.raises(SourceError, match=r"camera /dev/video99 cannot be opened: .*'video' group.*v4l2-ctl"):
        open_source("/dev/video99").open()


def test_gstreamer_missing_points_to_jetpack_opencv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  Video I/O:\n    GStreamer:   NO\n")
    assert not gstreamer_available()
    expected = r"CSI camera 0 needs OpenCV built with GStreamer.*JetPack.*python3-opencv"
    with pytest.raises(SourceError, match=expected):
        open_source("csi").open()
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "    GStreamer:   YES (1.20.3)\n")
    assert gstreamer_available()


def test_video_file_reads_every_frame_then_none(clip: Path) -> None:
    source = open_source(str(clip))
    source.open()
    assert source.fps == pytest.approx(25)
    marks = []
    while (image := source.read()) is not None:
        assert image.shape == (512, 512, 3) and image.dtype == np.uint8
        marks.append(mark_of(image))
    source.close()
    assert marks == list(range(30))


# --- picamera2, against a fake module -----------------------------------------------------------


class FakePicamera2:
    instances: list[FakePicamera2] = []
    fail_open = False
    chroma = 200  # the U and V samples

    def __init__(self, camera_num: int = 0) -> None:
        if FakePicamera2.fail_open:
            raise RuntimeError("Camera __init__ sequence did not complete.")
        self.camera_num, self.calls, self.config = camera_num, [], {}
        self.capture_error: Exception | None = None
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main: dict, lores: dict, buffer_count: int, controls: dict) -> dict:
        self.calls.append("create")
        return {"main": dict(main), "lores": dict(lores), "buffer_count": buffer_count, "controls": controls}

    def configure(self, config: dict) -> None:
        self.calls.append("configure")
        self.config = config

    def camera_configuration(self) -> dict:
        return self.config

    def start(self) -> None:
        self.calls.append("start")

    def capture_array(self, name: str = "main", wait: float | None = None) -> np.ndarray:
        self.calls.append(f"capture {name}")
        if self.capture_error is not None:
            raise self.capture_error
        width, height = self.config[name]["size"]
        stride = width + 64  # rows padded as the ISP does
        array = np.full((height * 3 // 2, stride), self.chroma, np.uint8)  # the U and V rows below Y
        array[:height, :width] = np.arange(width, dtype=np.uint8) % 100
        return array

    def stop(self) -> None:
        self.calls.append("stop")

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture
def fake_picamera2(monkeypatch: pytest.MonkeyPatch) -> type[FakePicamera2]:
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)
    FakePicamera2.instances, FakePicamera2.fail_open = [], False
    return FakePicamera2


def test_picamera2_reads_the_lores_y_plane(fake_picamera2: type[FakePicamera2]) -> None:
    source = open_source("picamera2:1", width=640, height=480, fps=20, lores_width=320, lores_height=240)
    source.open()
    camera = fake_picamera2.instances[0]
    assert camera.camera_num == 1
    assert camera.config["main"]["size"] == (640, 480)
    assert camera.config["lores"] == {"size": (320, 240), "format": "YUV420"}
    assert camera.config["controls"] == {"FrameDurationLimits": (50_000, 50_000)}
    gray = source.read()
    assert gray is not None and gray.shape == (240, 320) and gray.dtype == np.uint8
    assert gray.flags.c_contiguous and gray.max() < 100  # no padding, no chroma rows
    source.close()
    source.close()
    assert camera.calls == ["create", "configure", "start", "capture lores", "stop", "close"]


def test_picamera2_converts_the_lores_frame_to_bgr_for_yunet(fake_picamera2: type[FakePicamera2]) -> None:
    fake_picamera2.chroma = 128  # no colour
    source = open_source("picamera2", lores_width=320, lores_height=240, color=True)
    source.open()
    bgr = source.read()
    assert bgr is not None and bgr.shape == (240, 320, 3) and bgr.flags.c_contiguous
    # the same frame without the rows' padding, converted by OpenCV: the padding must not show
    unpadded = np.full((360, 320), 128, np.uint8)
    unpadded[:240] = np.arange(320, dtype=np.uint8) % 100
    expected = cv2.cvtColor(unpadded, cv2.COLOR_YUV420p2BGR)
    assert np.abs(bgr.astype(int) - expected).max() <= 1
    assert np.ptp(bgr.astype(int), axis=2).max() <= 1  # grey stays grey: B = G = R


def test_picamera2_failures_become_source_errors(fake_picamera2: type[FakePicamera2]) -> None:
    source = open_source("picamera2")
    source.open()
    fake_picamera2.instances[0].capture_error = TimeoutError()
    with pytest.raises(SourceError, match="picamera2 camera 0 stopped delivering frames"):
        source.read()
    fake_picamera2.fail_open = True
    with pytest.raises(SourceError, match="picamera2 camera 0 cannot be opened.*rpicam-hello --list-cameras"):
        source.open()


def test_picamera2_missing_gives_the_apt_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` raise ImportError
    source = open_source("picamera2")
    with pytest.raises(SourceError, match=r"sudo apt install python3-picamera2.*--system-site-packages"):
        source.open()


# --- the capture thread -------------------------------------------------------------------------


def test_non_realtime_file_delivers_every_frame_in_order(clip: Path) -> None:
    grabber = FrameGrabber(open_source(str(clip)), realtime=False).start()
    try:
        wait_until(lambda: grabber.frames_read >= 2)  # capture is ahead: it must wait, not drop
        frames: list[Frame] = []
        while not grabber.finished:
            if (frame := grabber.get(timeout=2.0)) is not None:
                frames.append(frame)
    finally:
        grabber.stop()
    assert [f.index for f in frames] == list(range(30))
    assert [mark_of(f.image) for f in frames] == list(range(30))
    assert all(a.timestamp <= b.timestamp for a, b in zip(frames, frames[1:], strict=False))
    assert (grabber.frames_read, grabber.dropped, grabber.bad_frames, grabber.error) == (30, 0, 0, None)
    assert grabber.get(timeout=0.01) is None


def test_realtime_file_is_paced_and_drops_for_a_slow_consumer(fast_clip: Path) -> None:
    started = time.monotonic()
    grabber = FrameGrabber(open_source(str(fast_clip)), realtime=True).start()
    try:
        first = grabber.get(timeout=2.0)
        wait_until(lambda: grabber.frames_read == 30 and grabber.dropped > 0)  # a consumer busy elsewhere
        frames = [first]
        while not grabber.finished:
            if (frame := grabber.get(timeout=2.0)) is not None:
                frames.append(frame)
    finally:
        grabber.stop()
    elapsed = time.monotonic() - started
    indices = [f.index for f in frames if f is not None]
    assert elapsed >= 29 / 150 * 0.9  # paced at the clip's 150 fps, not decoded flat out
    assert indices == sorted(set(indices)) and indices[-1] == 29  # the newest frame always wins
    assert len(indices) + grabber.dropped == 30


def test_bad_frames_are_counted_and_skipped() -> None:
    good = np.zeros((4, 6), np.uint8)
    bad = [np.zeros(0, np.uint8), np.zeros((4, 6), np.float32), np.zeros((4,), np.uint8),
           np.zeros((4, 6, 4), np.uint8), "not an image"]
    items: list[object] = [good, *bad, good, None]
    grabber = FrameGrabber(ScriptedSource(items, is_live=False), realtime=False).start()
    try:
        frames = []
        while not grabber.finished:
            if (frame := grabber.get(timeout=2.0)) is not None:
                frames.append(frame)
    finally:
        grabber.stop()
    assert [f.index for f in frames] == [0, 6]
    assert (grabber.frames_read, grabber.bad_frames) == (7, 5)


def test_live_none_is_a_bad_frame_not_the_end() -> None:
    grabber = FrameGrabber(ScriptedSource([None, None], period=0.001)).start()
    try:
        frame = grabber.get(timeout=2.0)
    finally:
        grabber.stop()
    assert frame is not None and frame.index >= 2 and grabber.bad_frames == 2


def test_lost_camera_is_reopened_with_backoff() -> None:
    # Five frames, then the camera is unplugged: three reads fail and three reopens fail.
    source = ScriptedSource(["frame"] * 5 + [SourceError("camera unplugged")] * 3,
                            open_plan=[True, False, False, False, True], period=0.001)
    grabber = FrameGrabber(source, backoff_initial=0.01, backoff_max=0.04, max_read_failures=3)
    source.grabber = grabber
    grabber.start()
    try:
        wait_until(lambda: grabber.reopen_count == 1)
        frame = grabber.get(timeout=2.0)
        assert frame is not None and grabber.camera_up
    finally:
        grabber.stop()
    assert source.up_at_open == [False] * 5  # start()'s open, then down while reopening
    assert source.up_at_read and all(source.up_at_read)  # up whenever it reads
    gaps = np.diff(source.opens[1:])
    assert (gaps >= np.array([0.02, 0.04, 0.04]) * 0.95).all(), gaps  # 0.01 -> 0.02 -> 0.04 -> capped
    assert source.closes >= 2  # closed when lost, and at stop


def test_live_open_retries_until_open_timeout() -> None:
    source = ScriptedSource([], open_plan=[False] * 1000)
    grabber = FrameGrabber(source, open_timeout=0.1, backoff_initial=0.01, backoff_max=0.02)
    with pytest.raises(SourceError, match=r"plug it in \(gave up after \d+ attempts in 0.1 s\)"):
        grabber.start()
    assert len(source.opens) >= 3


def test_live_open_succeeds_after_retries() -> None:
    source = ScriptedSource([], open_plan=[False, False, True], period=0.001)
    with FrameGrabber(source, open_timeout=5, backoff_initial=0.01) as grabber:
        assert grabber.get(timeout=2.0) is not None and grabber.camera_up
    assert len(source.opens) == 3


def test_file_open_failure_is_not_retried(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(SourceError, match="not found"):
        FrameGrabber(open_source(str(tmp_path / "gone.mp4")), open_timeout=30).start()
    assert time.monotonic() - started < 1


def test_file_read_error_ends_the_stream_with_the_error() -> None:
    source = ScriptedSource(["frame", OSError("disk gone")], is_live=False)
    grabber = FrameGrabber(source, realtime=False).start()
    wait_until(lambda: grabber.get(timeout=0.1) is None and grabber.finished)
    grabber.stop()
    assert isinstance(grabber.error, OSError)


@pytest.mark.parametrize("case", ["live", "backoff", "paced-file", "blocked-consumer"])
def test_stop_is_prompt(case: str, astronaut: np.ndarray, tmp_path: Path) -> None:
    source: ScriptedSource | VideoFileSource
    if case == "live":
        source = ScriptedSource([], period=0.001)
    elif case == "backoff":  # lost at the first read, then waiting 30 s before reopening
        source = ScriptedSource([SourceError("gone")])
    else:
        source = VideoFileSource(write_clip(tmp_path / "slow.avi", astronaut, frames=3, fps=0.5, size=64))
    grabber = FrameGrabber(source, realtime=case == "paced-file", backoff_initial=30, max_read_failures=1)
    grabber.start()
    if case == "backoff":
        wait_until(lambda: not grabber.camera_up)
    else:
        wait_until(lambda: grabber.frames_read >= 2)  # paced: waiting 2 s for frame 1; blocked: on the slot
    started = time.monotonic()
    grabber.stop()
    assert time.monotonic() - started < 1.0
    assert not any(t.name == "frame-grabber" and t.is_alive() for t in threading.enumerate())


def test_is_valid_image() -> None:
    assert is_valid_image(np.zeros((2, 2), np.uint8)) and is_valid_image(np.zeros((2, 2, 3), np.uint8))
    assert not is_valid_image(np.zeros((0, 2, 3), np.uint8)) and not is_valid_image(None)


def test_csi_hands_bgr_to_yunet_and_gray_to_haar() -> None:
    assert "video/x-raw,format=GRAY8 ! appsink" in csi_pipeline(0)
    colour = csi_pipeline(1, 1280, 720, 30, color=True)
    assert "sensor-id=1" in colour and "width=1280,height=720,framerate=30/1" in colour
    assert "nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink" in colour
