"""The options of ``fer-edge bench``, apart from its code (``fer_edge.tools.bench``).

Parsing them loads no OpenCV and no interpreter, so ``fer-edge --help`` stays light.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..bench.options import add_measure_arguments


def add_bench(subparsers: argparse._SubParsersAction, handler: Callable[[argparse.Namespace], int]) -> None:
    """Register ``fer-edge bench``, run by ``handler``."""
    bench = subparsers.add_parser(
        "bench", help="measure frames per second and per-stage latency",
        description="Run the daemon's own loop on every frame of a source, unpaced, and report "
                    "per-stage latency, fps, recall, CPU and memory; optionally sweep detector settings "
                    "or compare the two detectors.",
        epilog="Comparisons with the float model, the original projects' loop and the fer package "
               "need TensorFlow and run on the host: fer-convert compare --help")
    add_measure_arguments(bench)
    bench.add_argument("--sweep", action="store_true",
                       help="speed against recall over the detector's settings")
    bench.add_argument("--detector", choices=("yunet", "haar"), action="append",
                       help="the detector to use; given twice (--detector haar --detector yunet), both "
                            "run alternated on the same frames and the report recommends one")
    bench.set_defaults(func=handler)
