"""``fer-edge annotate``: a video (or a photo) in, a copy with each face's box, track id and
emotion drawn out (the drawing is fer_edge.overlay, shared with the preview stream)."""

from __future__ import annotations

import argparse
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2

from ..daemon import build_pipeline, stop_on_signals
from ..errors import EdgeError
from ..imagefile import check_image_file, decode_image_file
from ..overlay import draw_annotations

if TYPE_CHECKING:
    from ..config import Config
    from ..pipeline import Pipeline
    from ..sources import Frame

log = logging.getLogger(__name__)

# mp4v plays in browsers' and phones' players less often than H.264, but OpenCV's pip wheels
# cannot encode H.264; MJPG in .avi is the fallback every OpenCV build can write.
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}


@dataclass(frozen=True)
class AnnotateSummary:
    """What ``annotate_video`` wrote."""

    out: Path
    frames: int
    faces: int  # face boxes drawn, over all frames
    seconds: float
    fps: float  # the output's frame rate


def check_output(out: Path) -> str:
    """The fourcc for an output path; EdgeError before any work when it cannot be written."""
    fourcc = FOURCC_BY_SUFFIX.get(out.suffix.lower())
    if fourcc is None:
        raise EdgeError(f"cannot write {out}: use an .mp4 or .avi output file")
    if not out.parent.is_dir():
        raise EdgeError(f"cannot write {out}: directory {out.parent} does not exist")
    return fourcc


def open_writer(out: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """A VideoWriter for .mp4 (mp4v) or .avi (MJPG); EdgeError naming the remedy otherwise."""
    fourcc = check_output(out)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        raise EdgeError(f"OpenCV cannot write {out} with the {fourcc} codec; try an .avi output")
    return writer


class AnnotatedVideoWriter:
    """A pipeline's on_tick that writes each newly processed frame, annotated, to a video file."""

    def __init__(self, out: Path, default_fps: float):
        self.out, self.default_fps = out, default_fps
        self.frames = self.faces = 0
        self.fps = default_fps
        self._writer: cv2.VideoWriter | None = None
        self._written: Frame | None = None

    def __call__(self, pipeline: Pipeline) -> None:
        """Write the pipeline's last frame if it is new (on_tick also runs on idle iterations)."""
        frame = pipeline.last_frame
        if frame is None or frame is self._written:
            return
        image = draw_annotations(frame.image, pipeline.last_results)
        if self._writer is None:
            # Known once the source is open: a file's own rate, or what the camera reports.
            self.fps = pipeline.grabber.source.fps or self.default_fps
            self._writer = open_writer(self.out, self.fps, (image.shape[1], image.shape[0]))
        self._writer.write(image)
        self._written = frame
        self.frames += 1
        self.faces += len(pipeline.last_results)

    def close(self) -> None:
        """Finish the file (an MP4 is unplayable until its index is written)."""
        if self._writer is not None:
            self._writer.release()


def check_photo_source(config: Config) -> None:
    """A photo given as the source is checked against images.max_pixels before anything decodes it."""
    spec = config.source.spec.strip()
    path = Path(spec[5:] if spec.lower().startswith("file:") else spec)
    if path.is_file():
        check_image_file(path, config.images.max_pixels)


def annotate_video(config: Config, out: Path, stop: threading.Event | None = None) -> AnnotateSummary:
    """Run the daemon's detector, tracker and classifier over a source; write every frame annotated."""
    check_output(out)
    check_photo_source(config)
    writer = AnnotatedVideoWriter(out, float(config.source.fps))
    pipeline = build_pipeline(config, on_tick=writer)
    started = time.monotonic()
    pipeline.grabber.start()
    try:
        pipeline.run(stop or threading.Event())
    finally:
        pipeline.grabber.stop()
        writer.close()
    if not writer.frames:
        raise EdgeError(f"{pipeline.grabber.source.description} delivered no frame; {out} not written")
    return AnnotateSummary(out, writer.frames, writer.faces, time.monotonic() - started, writer.fps)


@dataclass(frozen=True)
class NumberedFace:
    """A face of a still as the overlay draws it: a number (largest first) and its box."""

    id: int
    box: tuple[int, int, int, int]


def annotate_photo(config: Config, source: Path, out: Path) -> int:
    """Draw the faces of a photo, found as ``fer-edge predict`` finds them, into ``out``; the count."""
    from ..photos import FacePredictor

    # header checked first; the decode worker reads the file, only if it is a regular one
    image = decode_image_file(source, config.images.max_pixels, cv2.IMREAD_COLOR)
    results = FacePredictor.from_config(config).classify(image)
    numbered = [(NumberedFace(i, face.box), expression) for i, (face, expression) in enumerate(results, 1)]
    drawn = draw_annotations(image, numbered)
    if not cv2.imwrite(str(out), drawn):
        raise EdgeError(f"cannot write {out}: check that its directory exists and its suffix is an image's")
    return len(results)


def count_frames(path: Path) -> int:
    """Frames OpenCV decodes from a video file (0 when it cannot open it)."""
    capture = cv2.VideoCapture(str(path))
    frames = 0
    while capture.isOpened() and capture.grab():
        frames += 1
    capture.release()
    return frames


def cmd_annotate(args: argparse.Namespace) -> int:
    """Write an annotated copy of a video file or camera; a camera runs until --max-frames or Ctrl-C."""
    from ..config import load_config
    from ..logs import configure_logging

    spec, out = args.source.strip(), Path(args.out)
    source = Path(spec[5:] if spec.lower().startswith("file:") else spec)
    if source.suffix.lower() in PHOTO_SUFFIXES:
        config = load_config(args.config, {"model.path": args.model, "detector.type": args.detector})
        configure_logging(config.log_level)
        if source.is_file():
            check_image_file(source, config.images.max_pixels)  # a bomb is refused whatever the output
        if out.suffix.lower() not in PHOTO_SUFFIXES:
            raise EdgeError(f"{source} is a photo: write it to an image file (.jpg or .png), not {out}")
        boxes = annotate_photo(config, source, out)
        print(f"{out}: {boxes} face {'box' if boxes == 1 else 'boxes'}")
        return 0
    # Every frame of a file, once: an annotated copy, not a live view.
    overrides = {"source.spec": args.source, "model.path": args.model, "detector.type": args.detector,
                 "source.max_frames": args.max_frames,
                 "source.realtime": False, "source.loop": False}
    config = load_config(args.config, overrides)
    configure_logging(config.log_level)
    stop = stop_on_signals(f"finishing {args.out}")
    summary = annotate_video(config, Path(args.out), stop)
    # Re-open what we wrote: a writer that silently produced an empty file is caught here.
    capture = cv2.VideoCapture(str(summary.out))
    readable = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    if readable != summary.frames:
        raise EdgeError(f"{summary.out}: wrote {summary.frames} frames but OpenCV reads back {readable}")
    print(f"{summary.out}: {summary.frames} frames at {summary.fps:g} fps, {summary.faces} face boxes, "
          f"{summary.seconds:.1f} s ({summary.frames / max(summary.seconds, 1e-9):.1f} frames/s)")
    return 0
