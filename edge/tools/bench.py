"""``fer-edge bench``: frames per second and per-stage latency of the daemon's own loop.

The daemon's Pipeline, built from the same configuration as ``fer-edge run``, processes every
frame of the source without pacing (a camera: its first --frames). ``--sweep`` then runs the
loop with other Haar settings side by side, alternating every few frames. The comparisons with
other models and projects need TensorFlow and run on the host: ``fer-convert compare``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import resource
from typing import Any

from ..bench.loops import (
    SourceFactory,
    alternate,
    bench_config,
    config_source,
    daemon_loop,
    frame_limit,
    source_factory,
)
from ..bench.report import advice, report, settings, time_shares
from ..config import Config
from ..errors import EdgeError

# The settings --sweep tries for each detector type (each with detect_every 1), then detect_every.
SWEEPS: dict[str, dict[str, tuple[Any, ...]]] = {
    "haar": {"scale_factor": (1.1, 1.2, 1.3), "min_neighbors": (3, 5), "working_width": (0, 480, 320, 240)},
    "yunet": {"score_threshold": (0.5, 0.6, 0.7), "working_width": (0, 480, 320, 240)},
}
# detector.type's default rule (docs/benchmarks.md): YuNet unless it finds faces in fewer
# frames than Haar or costs more than this many times Haar's time per detection run.
YUNET_MAX_COST = 1.5


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Measure the daemon's loop, then the sweep if asked for; return one JSON-ready dict."""
    config = bench_config(args.config, args.source, args.model, args.threads)
    if args.detector and len(args.detector) == 1:
        chosen = dataclasses.replace(config.detector, type=args.detector[0])
        config = dataclasses.replace(config, detector=chosen)
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
    if args.detector and len(args.detector) > 1:
        new_source = source_factory(config, limit)
        result["detectors"] = detectors(config, args.detector, new_source, limit, args.repeat)
        result["recommendation"] = recommend(result["detectors"])
    return result


def detectors(config: Config, types: list[str], new_source: SourceFactory, limit: int,
              repeat: int) -> list[dict[str, Any]]:
    """Each detector type with the config's other settings, alternated on the same frames."""
    variants = [dataclasses.replace(config.detector, type=kind) for kind in dict.fromkeys(types)]
    loops = [daemon_loop(v.type, dataclasses.replace(config, detector=v), new_source(), limit)
             for v in variants]
    alternate(loops, repeat, f"{len(loops)} detectors")
    rows = []
    for variant, loop in zip(variants, loops, strict=True):
        r = loop.result()
        rows.append({"type": variant.type, "fps": r["fps"],
                     "detect_ms_per_run": r.get("detect_ms_per_run", 0.0), "recall": r["recall"],
                     "detect_recall": r.get("detect_recall", 0.0), "faces_per_frame": r["faces_per_frame"]})
    return rows


def recommend(rows: list[dict[str, Any]]) -> str:
    """Which detector.type these figures favour, by the rule the default was chosen with."""
    by_type = {row["type"]: row for row in rows}
    if {"haar", "yunet"} <= by_type.keys():
        haar, yunet = by_type["haar"], by_type["yunet"]
        cost = yunet["detect_ms_per_run"] / max(haar["detect_ms_per_run"], 1e-9)
        if yunet["detect_recall"] < haar["detect_recall"]:
            return (f'use detector.type = "haar": YuNet found faces in fewer detection runs here '
                    f"({yunet['detect_recall']:.1%} against {haar['detect_recall']:.1%})")
        if cost > YUNET_MAX_COST:
            return (f'use detector.type = "haar" if speed matters most: YuNet costs {cost:.1f}x Haar\'s '
                    f"time per run here, for {yunet['detect_recall']:.1%} recall against "
                    f"{haar['detect_recall']:.1%}")
        return (f'use detector.type = "yunet": recall {yunet["detect_recall"]:.1%} against '
                f'{haar["detect_recall"]:.1%}, at {cost:.2f}x Haar\'s time per detection run')
    best = max(rows, key=lambda row: (row["detect_recall"], -row["detect_ms_per_run"]))
    return f'use detector.type = "{best["type"]}": the highest recall, then the least time'



def sweep(config: Config, new_source: SourceFactory, limit: int, repeat: int) -> list[dict[str, Any]]:
    """Speed against recall over the detector's settings, and over detect_every at the configured ones."""
    configured, grid_keys = config.detector, SWEEPS[config.detector.type]
    grid = [dataclasses.replace(configured, detect_every=1, **dict(zip(grid_keys, values, strict=True)))
            for values in itertools.product(*grid_keys.values())]
    variants = grid + [v for n in (1, 2, 3)
                       if (v := dataclasses.replace(configured, detect_every=n)) not in grid]
    loops = [daemon_loop(f"sweep {i}", dataclasses.replace(config, detector=v), new_source(), limit)
             for i, v in enumerate(variants)]
    alternate(loops, repeat, f"sweep of {len(loops)} settings")
    rows = []
    for variant, loop in zip(variants, loops, strict=True):
        r = loop.result()
        rows.append({"settings": {key: getattr(variant, key) for key in (*grid_keys, "detect_every")},
                     "configured": variant == configured, "fps": r["fps"],
                     "detect_ms": r["stages"]["detect"]["mean_ms"], "recall": r["recall"],
                     "detect_recall": r.get("detect_recall", 0.0), "faces_per_frame": r["faces_per_frame"]})
    return rows


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark and print the report, or one JSON object with --json."""
    result = run_bench(args)
    print(json.dumps(result) if args.json else report(result), flush=True)
    return 0
