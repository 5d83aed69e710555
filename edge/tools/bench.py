"""``fer-edge bench``: frames per second and per-stage latency of the daemon's own loop.

The daemon's Pipeline, built from the same configuration as ``fer-edge run``, processes every
frame of the source without pacing (a camera: its first --frames). ``--compare``, ``--baseline
seed|fer`` and ``--sweep`` then run their loops side by side, alternating every few frames.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import importlib.util
import itertools
import json
import resource
import statistics
import tempfile
from pathlib import Path
from typing import Any

import cv2

from ..classifier import (
    FAST_MODEL_NAME,
    TFLiteExpressionClassifier,
    default_model_path,
    load_interpreter_class,
    resolve_model_path,
)
from ..config import Config, load_config
from ..errors import EdgeError
from ..sources import open_source
from .bench_loops import (
    FER_SIZE,
    SEED_HAAR,
    Loop,
    SourceFactory,
    alternate,
    daemon_loop,
    fer_loop,
    seed_loop,
    source_factory,
)

LIVE_FRAMES = 300  # --frames default for cameras and streams, which never end
SWEEP = {"scale_factor": (1.1, 1.2, 1.3), "min_neighbors": (3, 5), "downscale_width": (0, 480, 320, 240)}
STAGES = ("capture", "detect", "classify", "classify_face", "publish")
# the stages each frame goes through in turn (classify_face is inside classify)
FRAME_STAGES = ("capture", "detect", "classify", "publish")
TF_HINT = "pip install -e '.[convert]' (TensorFlow, host side)"
# fer's declared dependencies pull in PyTorch (for MTCNN) and opencv-contrib-python, which would
# replace the headless OpenCV; its Haar + TFLite pipeline needs neither.
FER_HINT = "pip install --no-deps fer requests pillow, next to TensorFlow"


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Measure the daemon's loop, then the comparisons asked for; return one JSON-ready dict."""
    config = load_config(args.config, {"source.spec": args.source, "source.realtime": False,
                                       "model.path": args.model, "model.threads": args.threads,
                                       "publish.mode": "every"})  # the worst case: an event per face
    s = config.source
    source = open_source(s.spec, width=s.width, height=s.height, fps=s.fps)
    limit = args.frames or (LIVE_FRAMES if source.is_live else 0)
    main = daemon_loop("daemon", config, source, limit)
    alternate([main], 1, "daemon loop")
    if not main.frames:
        raise EdgeError(f"{source.description} delivered no frame to measure")
    result: dict[str, Any] = {
        "source": source.description, "frame_size": [main.shape[1], main.shape[0]], **main.result(),
        "wall_s": round(main.wall, 3), "cpu_s": round(main.cpu, 3),
        "cpu_cores": round(main.cpu / main.wall, 2),
        # before any comparison loads TensorFlow or more models: the daemon's own high-water mark
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "settings": settings(config),
    }
    result["time_shares"] = time_shares(result["stages"], result["ms_per_frame"])
    result["advice"] = advice(result, source.is_live)
    if args.compare or args.baseline or args.sweep:
        new_source = source_factory(config, limit)
        if args.compare:
            result["compare"] = compare(config, new_source, limit, args)
        if args.baseline:
            result["baselines"] = {name: BASELINES[name](config, new_source, limit, args)
                                   for name in dict.fromkeys(args.baseline)}
        if args.sweep:
            result["sweep"] = sweep(config, new_source, limit, args.repeat)
    return result


def settings(config: Config) -> dict[str, Any]:
    """What the figures were measured with."""
    return {"model": str(resolve_model_path(config.model.path)), "threads": config.model.threads,
            "haar": dataclasses.asdict(config.detector), "tracking": dataclasses.asdict(config.tracking),
            "publish_mode": config.publish.mode, "opencv": cv2.__version__,
            "opencv_threads": cv2.getNumThreads(), "interpreter": load_interpreter_class().__module__}


def time_shares(stages: dict[str, dict[str, float]], ms_per_frame: float) -> dict[str, float]:
    """Each stage's share of a frame's wall time; "other" is tracking, smoothing and the loop."""
    shares = {name: stages[name]["mean_ms"] / ms_per_frame for name in FRAME_STAGES}
    shares["other"] = max(1.0 - sum(shares.values()), 0.0)
    return {name: round(share, 3) for name, share in shares.items()}


def advice(r: dict[str, Any], live: bool) -> str:
    """Which setting would speed this loop up most, from the stage that takes most of a frame."""
    stage, share = max(r["time_shares"].items(), key=lambda item: item[1])
    if stage == "detect":
        return (f"Haar takes {share:.0%} of a frame: a smaller detector.downscale_width or a larger "
                "detector.detect_every is faster; --sweep shows what each costs in recall")
    if stage == "classify" and Path(r["settings"]["model"]).name != FAST_MODEL_NAME:
        return (f"classification takes {share:.0%} of a frame ({r['faces_per_frame']:.1f} faces): "
                f"model.path = \"{FAST_MODEL_NAME}\" takes 8x less time per face for 4.5 points "
                "of accuracy (models/README.md)")
    if stage == "classify":
        return (f"classification takes {share:.0%} of a frame ({r['faces_per_frame']:.1f} faces) with "
                "the fast model: a larger detector.min_size leaves out distant faces")
    if stage == "capture" and live:
        return (f"waiting for the camera takes {share:.0%} of a frame: its frame rate, not the "
                "processing, limits fps here")
    if stage == "capture":
        return f"decoding takes {share:.0%} of a frame: a smaller video decodes faster"
    return f"{stage} takes {share:.0%} of a frame"


def reference(flag: str) -> Any:
    """convert.reference (it needs TensorFlow), or an error saying what to install."""
    if not all(importlib.util.find_spec(name) for name in ("tensorflow", "keras")):
        raise EdgeError(f"{flag} needs TensorFlow, which is not installed: {TF_HINT}")
    import fer_convert.reference

    return fer_convert.reference


def keras_model(args: argparse.Namespace, int8_model: Path) -> Path:
    """The float Keras model of an int8 one: --keras-model, or X.keras beside X_int8.tflite."""
    stem = int8_model.name.removesuffix("_int8.tflite")
    if not args.keras_model and stem == int8_model.name:
        raise EdgeError(f"cannot tell which float Keras model {int8_model.name} was quantized from; "
                        "pass --keras-model PATH")
    path = Path(args.keras_model) if args.keras_model else int8_model.with_name(f"{stem}.keras")
    if not path.is_file():
        raise EdgeError(f"float Keras model {path} not found; pass --keras-model PATH "
                        "(models/*.keras in a source checkout)")
    return path


def require_faces(*loops: Loop) -> None:
    """Refuse to compare classifiers on a source where a loop classified no face at all."""
    for loop in loops:
        if not loop.faces:
            raise EdgeError(f"the {loop.name} loop found no face in {loop.frames} frames of "
                            f"{loop.source.description}, so there is no classification to compare; "
                            "use a source that shows a face")


def pass_ratios(slow: Loop, fast: Loop, decode: bool = True) -> list[float]:
    """Per pass over the frames, how many times faster ``fast`` ran than ``slow``.

    ``decode=False`` leaves out each loop's decoding and resizing of the frames.
    """
    pairs = zip(slow.pass_seconds(decode), fast.pass_seconds(decode), strict=True)
    return [round(a / b, 2) for a, b in pairs]


def compare(config: Config, new_source: SourceFactory, limit: int,
            args: argparse.Namespace) -> dict[str, Any]:
    """int8 against float TFLite, alternated."""
    with tempfile.TemporaryDirectory(prefix="fer-edge-bench-") as tmp:
        int8_model = resolve_model_path(config.model.path)
        keras, mirror, float_model = None, None, args.float_model
        if not float_model:
            keras = keras_model(args, int8_model)
            mirror = TFLiteExpressionClassifier(int8_model).mirror_averaged
            float_model = reference("--compare").float_tflite(keras, tmp, mirror_average=mirror)
        int8 = daemon_loop("int8", config, new_source(), limit)
        flt = daemon_loop("float", dataclasses.replace(
            config, model=dataclasses.replace(config.model, path=str(float_model))), new_source(), limit)
        alternate([int8, flt], args.repeat, "int8 vs float")
    require_faces(int8, flt)
    ints, floats = int8.result(), flt.result()
    return {"int8": ints, "float": floats, "float_model": str(float_model),
            "keras_model": str(keras) if keras else None, "mirror_average": mirror,
            "classify_face_speedup": round(floats["stages"]["classify_face"]["p50_ms"]
                                           / ints["stages"]["classify_face"]["p50_ms"], 2),
            "fps_ratios": pass_ratios(flt, int8)}


def against(theirs: Loop, ours: Loop, decode: bool = True) -> dict[str, Any]:
    """Two alternated loops' results and how many times faster ours ran, per pass and overall."""
    ratios = pass_ratios(theirs, ours, decode)
    theirs_result, ours_result = theirs.result(), ours.result()
    return {"theirs": theirs_result, "ours": ours_result, "ratio": statistics.median(ratios),
            "ratios": ratios, "decode_included": decode,
            "cpu_ratio": round(theirs_result["cpu_ms_per_frame"] / ours_result["cpu_ms_per_frame"], 2)}


def seed_baseline(config: Config, new_source: SourceFactory, limit: int,
                  args: argparse.Namespace) -> dict[str, Any]:
    """The original projects' loop against ours, alternated, decoding included in both."""
    path = keras_model(args, default_model_path())
    predict = reference("--baseline seed").keras_predictor(path)
    ours = daemon_loop("ours", config, new_source(), limit)
    seed = seed_loop(new_source(), predict, limit)
    alternate([seed, ours], args.repeat, "baseline seed")
    require_faces(seed, ours)
    return {**against(seed, ours), "settings": {"haar": dataclasses.asdict(SEED_HAAR),
                                                "keras_model": str(path), "classify": "model.predict"}}


def fer_baseline(config: Config, new_source: SourceFactory, limit: int,
                 args: argparse.Namespace) -> dict[str, Any]:
    """The fer package's pipeline against ours on 640x480 frames, alternated.

    Both loops decode the clip and resize it to 640x480, standing in for a 640x480 camera;
    that time is left out of both, so the ratio compares what each does with a frame.
    """
    if not importlib.util.find_spec("fer") or not importlib.util.find_spec("tensorflow"):
        raise EdgeError(f"--baseline fer needs the fer package and TensorFlow: {FER_HINT}")
    theirs = fer_loop(new_source(), limit)
    ours = daemon_loop("ours 640x480", config, new_source(), limit, size=FER_SIZE)
    alternate([theirs, ours], args.repeat, "baseline fer")
    require_faces(theirs, ours)
    ms = {name: round(1000 * sum(loop.pass_seconds(decode=False)) / loop.frames, 3)
          for name, loop in (("theirs", theirs), ("ours", ours))}
    return {**against(theirs, ours, decode=False), "ms_per_frame": ms, "frame_size": list(FER_SIZE),
            "settings": {"fer": importlib.metadata.version("fer"), "pipeline": "FER(mtcnn=False)"}}


BASELINES = {"seed": seed_baseline, "fer": fer_baseline}


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


def stage_table(stages: dict[str, dict[str, float]]) -> list[str]:
    """Rows of p50/p95/mean per stage, in the loop's order."""
    rows = [f"  {'stage':<15}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}"]
    rows += [f"  {name:<15}{s['p50_ms']:>9.3f}{s['p95_ms']:>9.3f}{s['mean_ms']:>9.3f}"
             for name in STAGES if (s := stages.get(name))]
    return rows


def report(r: dict[str, Any]) -> str:
    """The human-readable report."""
    st, h = r["settings"], r["settings"]["haar"]
    lines = [
        f"fer-edge bench: {r['source']}, {r['frames']} frames of {r['frame_size'][0]}x{r['frame_size'][1]}",
        f"  model {st['model']}, {st['threads']} LiteRT thread(s) ({st['interpreter']}); "
        f"OpenCV {st['opencv']} with {st['opencv_threads']} thread(s)",
        f"  Haar scale {h['scale_factor']}, neighbours {h['min_neighbors']}, min {h['min_size']} px, "
        f"width {h['downscale_width'] or 'full'}, equalize {h['equalize']}, detect every {h['detect_every']}",
        *stage_table(r["stages"]),
        f"  end to end {r['fps']:.1f} fps ({r['ms_per_frame']:.2f} ms/frame); "
        f"{r['faces_per_frame']:.2f} faces/frame; frames with a face {r['recall']:.1%} "
        f"(Haar runs with a face {r.get('detect_recall', 0):.1%})",
        f"  CPU {r['cpu_s']:.1f} s ({r['cpu_ms_per_frame']:.2f} ms/frame, "
        f"{r['cpu_cores']:.2f} cores busy), peak RSS {r['peak_rss_kib'] / 1024:.0f} MiB",
        "  time per frame: " + ", ".join(f"{name} {share:.0%}" for name, share in r["time_shares"].items()),
        f"  {r['advice']}",
    ]
    if c := r.get("compare"):
        lines.append("\nint8 against float TFLite (alternated):")
        for name in ("int8", "float"):
            face = c[name]["stages"]["classify_face"]
            lines.append(f"  {name:<6} classify/face p50 {face['p50_ms']:.3f} ms, "
                         f"p95 {face['p95_ms']:.3f} ms; {c[name]['fps']:.1f} fps, "
                         f"{c[name]['cpu_ms_per_frame']:.2f} CPU ms/frame")
        lines.append(f"  int8 classifies a face {c['classify_face_speedup']}x faster; "
                     f"end to end {'x, '.join(map(str, c['fps_ratios']))}x")
    baselines = r.get("baselines", {})
    if b := baselines.get("seed"):
        lines += ["\nthe original projects' loop (Haar 1.3/5 on the full frame, Keras predict per face):",
                  f"  seed {b['theirs']['fps']:.1f} fps, ours {b['ours']['fps']:.1f} fps (alternated): "
                  f"ours is {b['ratio']}x faster (per pass: {', '.join(map(str, b['ratios']))})",
                  f"  CPU per frame: seed {b['theirs']['cpu_ms_per_frame']:.1f} ms, ours "
                  f"{b['ours']['cpu_ms_per_frame']:.1f} ms ({b['cpu_ratio']}x less)",
                  f"  seed classify/face p50 {b['theirs']['stages']['classify_face']['p50_ms']:.2f} ms, "
                  f"detect p50 {b['theirs']['stages']['detect']['p50_ms']:.2f} ms"]
    if b := baselines.get("fer"):
        ms = b["ms_per_frame"]
        lines += [f"\nthe fer package {b['settings']['fer']} (Haar 1.1/5 on the full frame, its int8 TFLite "
                  "per face) on 640x480 frames, decoding excluded:",
                  f"  fer {ms['theirs']:.2f} ms/frame, ours {ms['ours']:.2f} ms/frame (alternated): "
                  f"ours is {b['ratio']}x faster (per pass: {', '.join(map(str, b['ratios']))})",
                  f"  frames with a face: fer {b['theirs']['recall']:.1%}, ours {b['ours']['recall']:.1%}"]
    if rows := r.get("sweep"):
        lines += ["\nsweep (alternated; * = configured; recall = frames with a face classified):",
                  "  scale nbrs width every |    fps | detect ms/frame | recall | Haar hits | faces/frame"]
        lines += [f"  {w['scale_factor']:<5} {w['min_neighbors']:<4} {w['downscale_width'] or 'full':<5} "
                  f"{w['detect_every']:<5} | {w['fps']:6.1f} | {w['detect_ms']:15.2f} | "
                  f"{w['recall']:6.1%} | {w['detect_recall']:9.1%} | {w['faces_per_frame']:.2f}"
                  f"{' *' if w['configured'] else ''}" for w in rows]
    return "\n".join(lines)


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark and print the report, or one JSON object with --json."""
    result = run_bench(args)
    print(json.dumps(result) if args.json else report(result), flush=True)
    return 0
