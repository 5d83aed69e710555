"""The daemon's loop against float TFLite, the original projects' loop and the fer package.

    fer-convert compare --source clip.mp4 --compare --baseline seed --baseline fer --repeat 3

Host side: the references need TensorFlow (and ``--baseline fer`` the fer package). Each
comparison alternates the daemon's own loop (``fer-edge bench``'s, built from the same
config) with the other one every few frames, so both see the same load; the ratios are per
pass over the frames and overall. ``fer-edge bench`` measures the daemon's loop on its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from fer_edge.bench.loops import (
    Loop,
    SourceFactory,
    alternate,
    bench_config,
    config_source,
    daemon_loop,
    frame_limit,
    source_factory,
)
from fer_edge.bench.options import add_measure_arguments
from fer_edge.bench.report import settings, settings_lines
from fer_edge.classifier import (
    default_model_path,
    resolve_model_path,
)
from fer_edge.config import Config
from fer_edge.errors import EdgeError
from fer_edge.logs import configure_logging

from .baselines import FER_SIZE, SEED_HAAR, fer_loop, seed_loop
from .command import Tool

TF_HINT = "pip install -e '.[convert]' (TensorFlow, host side)"
# fer's declared dependencies pull in PyTorch (for MTCNN) and opencv-contrib-python, which would
# replace the headless OpenCV; its Haar + TFLite pipeline needs neither.
FER_HINT = "pip install --no-deps fer requests pillow, next to TensorFlow"


def reference(flag: str) -> ModuleType:
    """fer_convert.reference, once TensorFlow is known to be there, or an error saying what to install."""
    if not all(importlib.util.find_spec(name) for name in ("tensorflow", "keras")):
        raise EdgeError(f"{flag} needs TensorFlow, which is not installed: {TF_HINT}")
    return importlib.import_module(".reference", __package__)


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
    """Per pass over the frames, how many times faster ``fast`` ran than ``slow``, to 2 decimals.

    ``decode=False`` leaves out each loop's decoding and resizing of the frames.
    """
    pairs = zip(slow.pass_seconds(decode), fast.pass_seconds(decode), strict=True)
    return [round(a / b, 2) for a, b in pairs]


def compare(config: Config, new_source: SourceFactory, limit: int,
            args: argparse.Namespace) -> dict[str, Any]:
    """int8 against float TFLite, alternated."""
    with tempfile.TemporaryDirectory(prefix="fer-convert-compare-") as tmp:
        int8_model = resolve_model_path(config.model.path)
        keras, views, float_model = None, None, args.float_model
        if not float_model:
            keras = keras_model(args, int8_model)
            float_model, tta = reference("--compare").float_tflite(keras, tmp, int8_model)
            views = {"mirror_average": tta.mirror, "crops": tta.crops, "centre_crop": tta.centre_crop,
                     "blur": tta.blur}
        int8 = daemon_loop("int8", config, new_source(), limit)
        flt = daemon_loop("float", dataclasses.replace(
            config, model=dataclasses.replace(config.model, path=str(float_model))), new_source(), limit)
        alternate([int8, flt], args.repeat, "int8 vs float")
    require_faces(int8, flt)
    ints, floats = int8.result(), flt.result()
    return {"int8": ints, "float": floats, "float_model": str(float_model),
            "keras_model": str(keras) if keras else None, **(views or {"mirror_average": None}),
            "classify_face_speedup": round(floats["stages"]["classify_face"]["p50_ms"]
                                           / ints["stages"]["classify_face"]["p50_ms"], 2),
            "fps_ratios": pass_ratios(flt, int8)}


def against(theirs: Loop, ours: Loop, decode: bool = True) -> dict[str, Any]:
    """Two alternated loops' results and how many times faster ours ran, per pass and overall."""
    ratios = pass_ratios(theirs, ours, decode)
    theirs_result, ours_result = theirs.result(), ours.result()
    # the median of an even number of passes is a mean of two: round it again
    return {"theirs": theirs_result, "ours": ours_result, "ratio": round(statistics.median(ratios), 2),
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
    return {**against(seed, ours), "settings": {"detector": dataclasses.asdict(SEED_HAAR),
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


def run_compare(args: argparse.Namespace) -> dict[str, Any]:
    """Run the comparisons asked for; return one JSON-ready dict."""
    config = bench_config(args.config, args.source, args.model, args.threads)
    source = config_source(config)
    limit = frame_limit(args.frames, source)
    new_source = source_factory(config, limit)
    result: dict[str, Any] = {"source": source.description, "settings": settings(config)}
    if args.compare:
        result["compare"] = compare(config, new_source, limit, args)
    if args.baseline:
        result["baselines"] = {name: BASELINES[name](config, new_source, limit, args)
                               for name in dict.fromkeys(args.baseline)}
    return result


def listed(ratios: list[float], digits: int, suffix: str = "") -> str:
    """Ratios as text, rounded to ``digits``: "1.55x, 1.61x" or "14.4, 15.6"."""
    return ", ".join(f"{ratio:.{digits}f}{suffix}" for ratio in ratios)


def report(r: dict[str, Any]) -> str:
    """The human-readable report: ratios to 2 decimals near 1 (int8 vs float), else to 1."""
    lines = [f"fer_convert.compare: {r['source']}", *settings_lines(r["settings"])]
    if c := r.get("compare"):
        lines.append("\nint8 against float TFLite (alternated):")
        for name in ("int8", "float"):
            face = c[name]["stages"]["classify_face"]
            lines.append(f"  {name:<6} classify/face p50 {face['p50_ms']:.3f} ms, "
                         f"p95 {face['p95_ms']:.3f} ms; {c[name]['fps']:.1f} fps, "
                         f"{c[name]['cpu_ms_per_frame']:.2f} CPU ms/frame")
        lines.append(f"  int8 classifies a face {c['classify_face_speedup']:.1f}x faster; "
                     f"end to end {listed(c['fps_ratios'], 2, 'x')}")
    baselines = r.get("baselines", {})
    if b := baselines.get("seed"):
        lines += ["\nthe original projects' loop (Haar 1.3/5 on the full frame, Keras predict per face):",
                  f"  seed {b['theirs']['fps']:.1f} fps, ours {b['ours']['fps']:.1f} fps (alternated): "
                  f"ours is {b['ratio']:.1f}x faster (per pass: {listed(b['ratios'], 1)})",
                  f"  CPU per frame: seed {b['theirs']['cpu_ms_per_frame']:.1f} ms, ours "
                  f"{b['ours']['cpu_ms_per_frame']:.1f} ms ({b['cpu_ratio']:.1f}x less)",
                  f"  seed classify/face p50 {b['theirs']['stages']['classify_face']['p50_ms']:.2f} ms, "
                  f"detect p50 {b['theirs']['stages']['detect']['p50_ms']:.2f} ms"]
    if b := baselines.get("fer"):
        ms = b["ms_per_frame"]
        lines += [f"\nthe fer package {b['settings']['fer']} (Haar 1.1/5 on the full frame, its int8 TFLite "
                  "per face) on 640x480 frames, decoding excluded:",
                  f"  fer {ms['theirs']:.2f} ms/frame, ours {ms['ours']:.2f} ms/frame (alternated): "
                  f"ours is {b['ratio']:.1f}x faster (per pass: {listed(b['ratios'], 1)})",
                  f"  frames with a face: fer {b['theirs']['recall']:.1%}, ours {b['ours']['recall']:.1%}"]
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command line: fer-edge bench's measuring options, then what to compare with."""
    add_measure_arguments(p)
    p.add_argument("--compare", action="store_true", help="int8 against float TFLite")
    p.add_argument("--float-model", help="float .tflite for --compare (default: converted from "
                                         "the Keras model)")
    p.add_argument("--keras-model", help="float Keras model for --compare and --baseline seed "
                                          "(default: the .keras beside the int8 model)")
    p.add_argument("--baseline", choices=tuple(BASELINES), action="append",
                   help="alternate with the original projects' loop (seed) or the fer package's "
                        "(fer, on 640x480 frames); repeatable")


def nothing_to_compare(args: argparse.Namespace) -> str | None:
    """The usage error of a run that asks for no comparison."""
    if args.compare or args.baseline:
        return None
    return "nothing to compare: pass --compare and/or --baseline seed|fer"


def run(args: argparse.Namespace) -> int:
    """The report, or one JSON object with --json."""
    configure_logging("warning")  # LiteRT's, TensorFlow's and OpenCV's chatter would drown the report
    result = run_compare(args)
    print(json.dumps(result) if args.json else report(result), flush=True)
    return 0


# A measuring tool like fer-edge bench: its failures (no face, a source or model it cannot use)
# exit with fer-edge's codes for them.
TOOL = Tool("compare", "the daemon's loop against float TFLite, the original projects and fer", __doc__,
            add_arguments, run, input_errors=(), usage_problem=nothing_to_compare)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m fer_convert.compare``."""
    return TOOL.main(argv)


if __name__ == "__main__":
    sys.exit(main())
