"""The options of ``fer-edge bench`` (and of the host's ``fer_convert.compare``), apart from their code.

Parsing them loads no OpenCV and no interpreter, so ``fer-edge --help`` stays light.
"""

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


def add_measure_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every measured run: source, frames, model, threads, config, output, passes."""
    parser.add_argument("--source", required=True, help="video file, camera index, /dev/videoN, ...")
    parser.add_argument("--frames", type=positive_int, help=f"frames per pass (default: all of a file, "
                                                            f"{LIVE_FRAMES} of a camera)")
    parser.add_argument("--model", help="int8 .tflite model, or a bundled one's name "
                                         "(default: fer_edge_int8.tflite; fer_edge_fast_int8.tflite)")
    parser.add_argument("--threads", type=positive_int, help="LiteRT threads (default: the config's, 1)")
    parser.add_argument("--config", type=Path, help="TOML config whose detector and tracking to use")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--repeat", type=positive_int, default=1,
                        help="passes over the frames when comparing")


def add_bench(subparsers: argparse._SubParsersAction, handler: Callable[[argparse.Namespace], int]) -> None:
    """Register ``fer-edge bench``, run by ``handler``."""
    bench = subparsers.add_parser(
        "bench", help="measure frames per second and per-stage latency",
        description="Run the daemon's own loop on every frame of a source, unpaced, and report "
                    "per-stage latency, fps, recall, CPU and memory; optionally sweep detector settings "
                    "or compare the two detectors.",
        epilog="Comparisons with the float model, the original projects' loop and the fer package "
               "need TensorFlow and run on the host: python -m fer_convert.compare --help")
    add_measure_arguments(bench)
    bench.add_argument("--sweep", action="store_true",
                       help="speed against recall over the detector's settings")
    bench.add_argument("--detector", choices=("yunet", "haar"), action="append",
                       help="the detector to use; given twice (--detector haar --detector yunet), both "
                            "run alternated on the same frames and the report recommends one")
    bench.set_defaults(func=handler)
