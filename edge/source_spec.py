"""The grammar of ``--source SPEC``, parsed without opening anything or importing OpenCV.

``fer_edge.sources.open_source`` builds the source a parsed spec names; ``check-config`` parses
specs with this module alone, so a typo is caught before rollout without loading OpenCV.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import SourceError

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mjpg", ".mjpeg", ".ts"})
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")
SPEC_HELP = ("use a video file path, file:PATH, a camera index or /dev/videoN, picamera2, csi, "
             "gst:PIPELINE or rtsp://...")


@dataclass(frozen=True)
class SourceSpec:
    """A parsed spec: ``kind`` is file, gst, stream, csi, picamera2 or camera; ``target`` its path,
    pipeline, URL, sensor or camera number, or device path."""

    kind: str
    target: str | int


def parse_spec(spec: str) -> SourceSpec:
    """What a --source SPEC names; SourceError naming the forms when it names nothing."""
    text = spec.strip()
    lower = text.lower()
    if lower.startswith("file:"):
        return SourceSpec("file", text[5:])
    if lower.startswith("gst:"):
        if not text[4:].strip():
            raise SourceError(f"source '{spec}' has an empty pipeline: write gst:PIPELINE ending in appsink")
        return SourceSpec("gst", text[4:].strip())
    if lower.startswith(STREAM_SCHEMES):
        return SourceSpec("stream", text)
    if match := re.fullmatch(r"(csi|picamera2)(?::(\d+))?", lower):
        return SourceSpec(match.group(1), int(match.group(2) or 0))
    if text.isdigit():
        return SourceSpec("camera", int(text))
    if text.startswith("/dev/"):  # /dev/videoN, or a stable /dev/v4l/by-id/... link
        return SourceSpec("camera", text)
    path = Path(text)
    if text and (path.suffix.lower() in VIDEO_SUFFIXES or "/" in text or os.sep in text or path.exists()):
        return SourceSpec("file", text)
    raise SourceError(f"unknown source '{spec}': {SPEC_HELP}")
