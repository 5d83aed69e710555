"""The measured loops of ``fer-edge bench``: the daemon's own, the original projects', fer's, in turns.

A :class:`Loop` reads its own source, so decoding counts in every loop's frame rate. Loops that
are compared run side by side in turns of a few frames (ABAB...): load that drifts during the
run slows every loop alike, and the ratios stay meaningful even where absolute figures are not.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from ..config import Config, DetectorConfig
from ..daemon import build_pipeline
from ..faces import CASCADE_WINDOW, Face, HaarFaceDetector
from ..mqtt.publisher import to_json  # the exact serialisation publish_event does
from ..sources import Frame, FrameSource, open_source, to_gray
from ..stats import StageTimes

log = logging.getLogger(__name__)

CHUNK = 8  # frames a loop processes before the next one takes its turn
SAMPLES = 1_000_000  # keep every sample: StageTimes' default window is the daemon's last 500
# The original projects: detectMultiScale(gray, 1.3, 5) on the full frame, no minSize.
SEED_HAAR = DetectorConfig(scale_factor=1.3, min_neighbors=5, min_size=CASCADE_WINDOW,
                         downscale_width=0, equalize=False)
FER_SIZE = (640, 480)  # the frame size of the comparison with the fer package
Handler = Callable[[Frame], int]  # one frame's work; returns the faces classified in it
SourceFactory = Callable[[], FrameSource]  # a new, unopened source of the same frames each call


class ReplaySource:
    """Frames recorded from a live source, replayed so that several loops see the same ones."""

    is_live = False

    def __init__(self, frames: list[np.ndarray], description: str):
        self.frames, self.description, self.fps = frames, f"{description} (recorded)", None
        self._next = 0

    def open(self) -> None:
        """Rewind to the first frame."""
        self._next = 0

    def read(self) -> np.ndarray | None:
        """The next recorded frame, None after the last."""
        self._next += 1
        return self.frames[self._next - 1] if self._next <= len(self.frames) else None

    def close(self) -> None:
        """Nothing to release."""


class Loop:
    """Passes over one source: read and convert each frame (stage "capture"), then handle it."""

    def __init__(self, name: str, source: FrameSource, handle: Handler, times: StageTimes, *,
                 limit: int = 0, size: tuple[int, int] | None = None, gray: bool = True):
        self.name, self.source, self.handle, self.times = name, source, handle, times
        self.limit, self.size = limit, size  # size: resize each frame to (width, height) first
        self.gray = gray  # False: the handler takes the decoded BGR frame and converts it itself
        self.frames = self.faces = self.with_face = self.pass_frames = 0
        self.wall = self.decode = self.cpu = 0.0  # cpu: process CPU seconds, all threads
        self.passes: list[float] = []  # wall seconds of each finished pass
        self.pass_decode: list[float] = []  # of which decoding and resizing
        self.shape: tuple[int, ...] = ()
        self.counter: _HitCounter | None = None  # the daemon's loops count their detection hits
        self.done = False
        source.open()

    def step(self, count: int) -> int:
        """Process up to ``count`` more frames of this pass; return how many."""
        start, cpu, done = time.perf_counter(), time.process_time(), 0
        while done < count and not self.done:
            t0 = time.perf_counter()
            image = None if self.limit and self.pass_frames >= self.limit else self.source.read()
            if image is None:
                self.done = True
                break
            if self.size:
                image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
            t1 = time.perf_counter()
            image = to_gray(image) if self.gray else image
            self.times.add("capture", time.perf_counter() - t0)
            self.decode += t1 - t0
            self.shape = image.shape[:2]
            faces = self.handle(Frame(self.frames, time.time(), image))
            self.frames, self.pass_frames, done = self.frames + 1, self.pass_frames + 1, done + 1
            self.faces, self.with_face = self.faces + faces, self.with_face + (faces > 0)
        self.wall += time.perf_counter() - start
        self.cpu += time.process_time() - cpu
        if self.done:
            self.source.close()
            self.passes.append(self.wall - sum(self.passes))
            self.pass_decode.append(self.decode - sum(self.pass_decode))
        return done

    def pass_seconds(self, decode: bool = True) -> list[float]:
        """Wall seconds of each finished pass; without decoding and resizing if not ``decode``."""
        if decode:
            return list(self.passes)
        return [wall - dec for wall, dec in zip(self.passes, self.pass_decode, strict=True)]

    def restart(self) -> None:
        """Begin another pass over the same frames."""
        self.source.open()
        self.done, self.pass_frames = False, 0

    def result(self) -> dict[str, Any]:
        """Frame rate, latencies and what was found, as JSON-ready values."""
        frames = max(self.frames, 1)
        result = {"frames": self.frames, "fps": round(self.frames / max(self.wall, 1e-9), 2),
                  "ms_per_frame": round(1000 * self.wall / frames, 3),
                  # the CPU a frame took, whatever else ran: steadier than wall time on a busy host
                  "cpu_ms_per_frame": round(1000 * self.cpu / frames, 3),
                  "faces_per_frame": round(self.faces / frames, 3),
                  "recall": round(self.with_face / frames, 4), "stages": self.times.summary()}
        if self.counter and self.counter.runs:
            result["detect_recall"] = round(self.counter.hits / self.counter.runs, 4)
        return result


class _FaceTimer:
    """The pipeline's classifier, each face's inference timed as stage "classify_face"."""

    def __init__(self, classifier: Any, times: StageTimes):
        self._classifier, self._times = classifier, times

    def probabilities(self, face: np.ndarray) -> np.ndarray:
        """The wrapped classifier's probabilities, timed."""
        with self._times.time("classify_face"):
            return self._classifier.probabilities(face)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._classifier, name)


class _HitCounter:
    """The pipeline's detector, counting the detection runs that found a face."""

    def __init__(self, detector: HaarFaceDetector):
        self._detector, self.runs, self.hits = detector, 0, 0

    def detect(self, gray: np.ndarray) -> list[Face]:
        """The wrapped detector's faces, counted."""
        faces = self._detector.detect(gray)
        self.runs, self.hits = self.runs + 1, self.hits + bool(faces)
        return faces


def daemon_loop(name: str, config: Config, source: FrameSource, limit: int,
                size: tuple[int, int] | None = None) -> Loop:
    """The daemon's loop: Pipeline.process, then each event serialised as MQTT would send it."""
    pipeline = build_pipeline(config)
    pipeline.times = times = StageTimes(SAMPLES)
    pipeline.classifier = _FaceTimer(pipeline.classifier, times)  # type: ignore[assignment]
    pipeline.detector = counter = _HitCounter(pipeline.detector)  # type: ignore[assignment]

    def handle(frame: Frame) -> int:
        events = pipeline.process(frame)
        with times.time("publish"):
            for event in events:
                to_json(event)
        return pipeline.faces_in_view

    loop = Loop(name, source, handle, times, limit=limit, size=size)
    loop.counter = counter
    return loop


def seed_loop(source: FrameSource, predict: Callable[[np.ndarray], Any], limit: int) -> Loop:
    """The original projects' loop: Haar 1.3/5 on the full frame, Keras predict on each face."""
    detector, times = HaarFaceDetector(SEED_HAAR), StageTimes(SAMPLES)

    def handle(frame: Frame) -> int:
        with times.time("detect"):
            faces = detector.detect(frame.image)
        with times.time("classify"):
            for face in faces:
                x, y, w, h = face.box
                crop = cv2.resize(frame.image[y:y + h, x:x + w], (48, 48))
                with times.time("classify_face"):
                    predict(crop)
        return len(faces)

    return Loop("seed", source, handle, times, limit=limit)


def fer_loop(source: FrameSource, limit: int) -> Loop:
    """The ``fer`` package's pipeline on 640x480 frames: ``FER(mtcnn=False).detect_emotions``.

    That is fer's default: Haar (scale 1.1, 5 neighbours, 50 px minimum) on the full frame,
    then its mini-Xception on each face through TensorFlow's TFLite interpreter (its int8
    model). It takes the BGR frame and converts it to grayscale itself.
    """
    from fer.fer import FER

    detector, times = FER(mtcnn=False), StageTimes(SAMPLES)

    def handle(frame: Frame) -> int:
        with times.time("detect_classify"):
            return len(detector.detect_emotions(frame.image))

    return Loop("fer", source, handle, times, limit=limit, size=FER_SIZE, gray=False)


def alternate(loops: list[Loop], repeat: int, phase: str) -> None:
    """Run the loops in turns of CHUNK frames to the end, ``repeat`` times (ABAB...)."""
    progress, turn = Progress(phase), 0
    for round_ in range(repeat):
        if round_:
            for loop in loops:
                loop.restart()
        while not all(loop.done for loop in loops):
            # rotate who goes first: a loop that always ran right after the same one would
            # inherit its cache state and its place in the other processes' schedule
            first = turn % len(loops)
            progress.add(sum(loop.step(CHUNK) for loop in loops[first:] + loops[:first] if not loop.done))
            turn += 1
    progress.end()


class Progress:
    """A progress line on stderr every few seconds, for phases that take that long."""

    def __init__(self, phase: str):
        self.phase, self.frames, self.start = phase, 0, time.monotonic()
        self.tty = sys.stderr.isatty()
        self._next = self.start + (1.0 if self.tty else 5.0)

    def add(self, frames: int) -> None:
        """Count frames and print the line when it is due."""
        self.frames += frames
        now = time.monotonic()
        if now >= self._next:
            self._next = now + (1.0 if self.tty else 5.0)
            print(f"bench: {self.phase}: {self.frames} frames, {now - self.start:.0f} s",
                  end="\r" if self.tty else "\n", file=sys.stderr, flush=True)

    def end(self) -> None:
        """Leave the terminal line clean."""
        if self.tty and self.frames:
            print(" " * 60, end="\r", file=sys.stderr, flush=True)


def source_factory(config: Config, limit: int) -> SourceFactory:
    """New sources that yield the same frames: a file reopened, a live source's first frames replayed."""
    s = config.source
    source = open_source(s.spec, width=s.width, height=s.height, fps=s.fps)
    if not source.is_live:
        return lambda: open_source(s.spec)
    source.open()
    try:
        frames = [source.read() for _ in range(limit)]
    finally:
        source.close()
    return lambda: ReplaySource(frames, source.description)
