"""``fer-edge bench``: frames per second and per-stage latency of the daemon's own loop.

The daemon's Pipeline, built from the same configuration as ``fer-edge run``, processes every
frame of the source without pacing (a camera: its first --frames). ``--sweep`` then runs the
loop with other Haar settings side by side, alternating every few frames. The comparisons with
other models and projects need TensorFlow and run on the host: ``python -m fer_convert.compare``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import resource
from typing import Any

from ..config import Config
from ..errors import EdgeError
from .bench_loops import (
    SourceFactory,
    alternate,
    bench_config,
    config_source,
    daemon_loop,
    frame_limit,
    source_factory,
)
from .bench_report import advice, report, settings, time_shares

SWEEP: dict[str, tuple[Any, ...]] = {"scale_factor": (1.1, 1.2, 1.3), "min_neighbors": (3, 5),
                                     "downscale_width": (0, 480, 320, 240)}


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Measure the daemon's loop, then the sweep if asked for; return one JSON-ready dict."""
    config = bench_config(args.config, args.source, args.model, args.threads)
    source = config_source(config)
    limit = frame_limit(args.frames, source)
    main = daemon_loop("daemon", config, source, limit)
    alternate([main], 1, "daemon loop")
    if not main.frames:
        raise EdgeError(f"{source.description} delivered no frame to measure")
    result: dict[str, Any] = {
        "source": source.description, "frame_size": [main.shape[1], main.shape[0]], **main.result(),
        "wall_s": round(main.wall, 3), "cpu_s": round(main.cpu, 3),
        "cpu_cores": round(main.cpu / main.wall, 2),
        # before the sweep loads more models: the daemon's own high-water mark
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "settings": settings(config),
    }
    result["time_shares"] = time_shares(result["stages"], result["ms_per_frame"])
    result["advice"] = advice(result, source.is_live)
    if args.sweep:
        result["sweep"] = sweep(config, source_factory(config, limit), limit, args.repeat)
    return result


def sweep(config: Config, new_source: SourceFactory, limit: int, repeat: int) -> list[dict[str, Any]]:
    """Speed against recall over Haar settings, and over detect_every at the configured ones."""
    haar = config.detector
    grid = [dataclasses.replace(haar, detect_every=1, **dict(zip(SWEEP, values, strict=True)))
            for values in itertools.product(*SWEEP.values())]
    variants = grid + [v for n in (1, 2, 3) if (v := dataclasses.replace(haar, detect_every=n)) not in grid]
    loops = [daemon_loop(f"sweep {i}", dataclasses.replace(config, detector=v), new_source(), limit)
             for i, v in enumerate(variants)]
    alternate(loops, repeat, f"sweep of {len(loops)} settings")
    rows = []
    for variant, loop in zip(variants, loops, strict=True):
        r = loop.result()
        rows.append({**{key: getattr(variant, key) for key in (*SWEEP, "detect_every")},
                     "configured": variant == haar, "fps": r["fps"],
                     "detect_ms": r["stages"]["detect"]["mean_ms"], "recall": r["recall"],
                     "detect_recall": r.get("detect_recall", 0.0), "faces_per_frame": r["faces_per_frame"]})
    return rows


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark and print the report, or one JSON object with --json."""
    result = run_bench(args)
    print(json.dumps(result) if args.json else report(result), flush=True)
    return 0
