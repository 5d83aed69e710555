"""The measured loops of ``fer-edge bench`` and ``fer-convert compare``, run in turns.

A :class:`Loop` reads its own source, so decoding counts in every loop's frame rate. Loops that
are compared run side by side in turns of a few frames (ABAB...): load that drifts during the
run slows every loop alike, and the ratios stay meaningful even where absolute figures are not.
The daemon's loop is built here; the other projects' loops (host side) in ``fer_convert.baselines``.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..classifier import Expression, TFLiteExpressionClassifier
from ..config import Config, load_config
from ..daemon import build_classifier, build_pipeline
from ..faces import Face, FaceDetector, build_detector
from ..mqtt.client import to_json  # the exact serialisation publish_event does
from ..sources import Frame, FrameSource, open_source, to_gray
from ..stats import StageTimes
from .options import LIVE_FRAMES

log = logging.getLogger(__name__)

CHUNK = 8  # frames a loop processes before the next one takes its turn
SAMPLES = 1_000_000  # keep every sample: StageTimes' default window is the daemon's last 500
Handler = Callable[[Frame], int]  # one frame's work; returns the faces classified in it
SourceFactory = Callable[[], FrameSource]  # a new, unopened source of the same frames each call


class ReplaySource:
    """Frames recorded from a live source, replayed so that several loops see the same ones."""

    is_live = False

    def __init__(self, frames: list[np.ndarray], description: str):
        self.frames, self.description = frames, f"{description} (recorded)"
        self.fps: float | None = None
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
            result["detect_ms_per_run"] = round(1000 * self.counter.seconds / self.counter.runs, 3)
        return result


class _FaceTimer:
    """A classifier whose every face's inference is timed as stage "classify_face"."""

    def __init__(self, classifier: TFLiteExpressionClassifier, times: StageTimes):
        self._classifier, self._times = classifier, times

    def probabilities(self, face: np.ndarray) -> np.ndarray:
        """The wrapped classifier's probabilities, timed."""
        with self._times.time("classify_face"):
            return self._classifier.probabilities(face)

    def to_expression(self, probabilities: np.ndarray, top: int | None = None) -> Expression:
        """The wrapped classifier's expression (not timed: it only names the top label)."""
        return self._classifier.to_expression(probabilities, top)


class _HitCounter:
    """A detector that counts the detection runs, those that found a face, and their time."""

    def __init__(self, detector: FaceDetector):
        self._detector, self.runs, self.hits, self.seconds = detector, 0, 0, 0.0

    def detect(self, image: np.ndarray) -> list[Face]:
        """The wrapped detector's faces, counted."""
        started = time.perf_counter()
        faces = self._detector.detect(image)
        self.seconds += time.perf_counter() - started
        self.runs, self.hits = self.runs + 1, self.hits + bool(faces)
        return faces


def daemon_loop(name: str, config: Config, source: FrameSource, limit: int,
                size: tuple[int, int] | None = None) -> Loop:
    """The daemon's loop: Pipeline.process, then each event serialised as MQTT would send it."""
    times = StageTimes(SAMPLES)
    counter = _HitCounter(build_detector(config.detector))
    classifier = _FaceTimer(build_classifier(config), times)
    pipeline = build_pipeline(config, detector=counter, classifier=classifier)
    pipeline.times = times

    def handle(frame: Frame) -> int:
        events = pipeline.process(frame)
        with times.time("publish"):
            for event in events:
                to_json(event)
        return pipeline.faces_in_view

    loop = Loop(name, source, handle, times, limit=limit, size=size)
    loop.counter = counter
    return loop


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


def bench_config(path: str | Path | None, spec: str, model: str | None, threads: int | None) -> Config:
    """The daemon's configuration for a measured run: every frame unpaced, an event per face."""
    # publish.mode "every" is the worst case: an event per face per frame, all serialised
    return load_config(path, {"source.spec": spec, "source.realtime": False, "model.path": model,
                              "model.threads": threads, "publish.mode": "every"})


def config_source(config: Config) -> FrameSource:
    """The configured source, built but not opened."""
    s = config.source
    return open_source(s.spec, width=s.width, height=s.height, fps=s.fps)


def frame_limit(frames: int | None, source: FrameSource) -> int:
    """Frames per pass: ``frames``, else all of a file and LIVE_FRAMES of a source that never ends."""
    return frames or (LIVE_FRAMES if source.is_live else 0)


def source_factory(config: Config, limit: int) -> SourceFactory:
    """New sources that yield the same frames: a file reopened, a live source's first frames replayed."""
    source = config_source(config)
    if not source.is_live:
        return lambda: open_source(config.source.spec)
    frames: list[np.ndarray] = []
    source.open()
    try:
        while len(frames) < limit and (image := source.read()) is not None:
            frames.append(image)
    finally:
        source.close()
    return lambda: ReplaySource(frames, source.description)
