"""The options of every measured run (``fer-edge bench``, the host's ``fer-convert compare``).

Parsing them loads no OpenCV and no interpreter, so ``fer-edge --help`` stays light.
"""

from __future__ import annotations

import argparse
from pathlib import Path

LIVE_FRAMES = 300  # --frames default for cameras and streams, which never end


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_measure_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every measured run: source, frames, model, threads, config, output, passes."""
    parser.add_argument("--source", required=True, help="video file, camera index, /dev/videoN, ...")
    parser.add_argument("--frames", type=positive_int, help=f"frames per pass (default: all of a file, "
                                                            f"{LIVE_FRAMES} of a camera)")
    parser.add_argument("--model", help="int8 .tflite model, or a bundled one's name: fer_edge_int8.tflite "
                                         "or fer_edge_fast_int8.tflite (default: the config's model.path, "
                                         "else the bundled fer_edge_int8.tflite)")
    parser.add_argument("--threads", type=positive_int, help="LiteRT threads (default: the config's, 1)")
    parser.add_argument("--config", type=Path, help="TOML config whose detector and tracking to use")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--repeat", type=positive_int, default=1,
                        help="passes over the frames when comparing (default: 1)")
