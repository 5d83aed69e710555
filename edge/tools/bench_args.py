"""The arguments of ``fer-edge bench``, kept apart from its code so that parsing loads no OpenCV."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

LIVE_FRAMES = 300  # --frames default for cameras and streams, which never end


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_bench(subparsers: argparse._SubParsersAction, handler: Callable[[argparse.Namespace], int]) -> None:
    """Register ``fer-edge bench``, run by ``handler``."""
    bench = subparsers.add_parser(
        "bench", help="measure frames per second and per-stage latency",
        description="Run the daemon's own loop on every frame of a source, unpaced, and report "
                    "per-stage latency, fps, recall, CPU and memory; optionally compare it with "
                    "the float model, the original projects' loop and other Haar settings.")
    bench.add_argument("--source", required=True, help="video file, camera index, /dev/videoN, ...")
    bench.add_argument("--frames", type=positive_int, help=f"frames per pass (default: all of a file, "
                                                        f"{LIVE_FRAMES} of a camera)")
    bench.add_argument("--model", help="int8 .tflite model, or a bundled one's name "
                                        "(default: fer_edge_int8.tflite; fer_edge_fast_int8.tflite)")
    bench.add_argument("--threads", type=positive_int, help="LiteRT threads (default: the config's, 1)")
    bench.add_argument("--config", type=Path, help="TOML config whose detector and tracking to use")
    bench.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    bench.add_argument("--compare", action="store_true", help="int8 against float TFLite")
    bench.add_argument("--float-model", help="float .tflite for --compare (default: converted from "
                                             "the Keras model, which needs TensorFlow)")
    bench.add_argument("--keras-model", help="float Keras model for --compare and --baseline seed "
                                              "(default: the .keras beside the int8 model)")
    bench.add_argument("--sweep", action="store_true", help="speed against recall over Haar settings")
    bench.add_argument("--baseline", choices=("seed", "fer"), action="append",
                       help="alternate with the original projects' loop (seed) or the fer package's "
                            "(fer, on 640x480 frames); repeatable")
    bench.add_argument("--repeat", type=positive_int, default=1, help="passes over the frames when comparing")
    bench.set_defaults(func=handler)
