"""What ``fer-edge bench`` reports: settings, time shares, advice, and the text of the report.

``fer-convert compare`` reuses the settings and their lines for its own report.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import cv2

from ..classifier import FAST_MODEL_NAME, load_interpreter_class, resolve_model_path
from ..config import Config

STAGES = ("capture", "detect", "classify", "classify_face", "publish")
# the stages each frame goes through in turn (classify_face is inside classify)
FRAME_STAGES = ("capture", "detect", "classify", "publish")


def settings(config: Config) -> dict[str, Any]:
    """What the figures were measured with."""
    return {"model": str(resolve_model_path(config.model.path)), "threads": config.model.threads,
            "detector": dataclasses.asdict(config.detector), "tracking": dataclasses.asdict(config.tracking),
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
        return (f"face detection takes {share:.0%} of a frame: a smaller detector.working_width or a "
                "larger detector.detect_every is faster, and --detector haar --detector yunet compares "
                "the two; --sweep shows what each costs in recall")
    if stage == "classify" and Path(r["settings"]["model"]).name != FAST_MODEL_NAME:
        return (f"classification takes {share:.0%} of a frame ({r['faces_per_frame']:.1f} faces): "
                f"model.path = \"{FAST_MODEL_NAME}\" takes 6-8x less time per face for 1.1 points "
                "of accuracy (models/README.md)")
    if stage == "classify":
        return (f"classification takes {share:.0%} of a frame ({r['faces_per_frame']:.1f} faces) with "
                "the fast model: a larger detector.min_face or a smaller detector.max_faces leaves out "
                "distant faces")
    if stage == "capture" and live:
        return (f"waiting for the camera takes {share:.0%} of a frame: its frame rate, not the "
                "processing, limits fps here")
    if stage == "capture":
        return f"decoding takes {share:.0%} of a frame: a smaller video decodes faster"
    return f"{stage} takes {share:.0%} of a frame"


def settings_lines(st: dict[str, Any]) -> list[str]:
    """The model, thread and detector settings a report was measured with."""
    d = st["detector"]
    own = (f"score {d['score_threshold']}, NMS {d['nms_threshold']}" if d["type"] == "yunet" else
           f"scale {d['scale_factor']}, neighbours {d['min_neighbors']}, equalize {d['equalize']}")
    return [f"  model {st['model']}, {st['threads']} LiteRT thread(s) ({st['interpreter']}); "
            f"OpenCV {st['opencv']} with {st['opencv_threads']} thread(s)",
            f"  detector {d['type']} ({own}), width {d['working_width'] or 'full'}, min {d['min_face']} px, "
            f"at most {d['max_faces'] or 'all'} faces, detect every {d['detect_every']}"]


def stage_table(stages: dict[str, dict[str, float]]) -> list[str]:
    """Rows of p50/p95/mean per stage, in the loop's order."""
    rows = [f"  {'stage':<15}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}"]
    rows += [f"  {name:<15}{s['p50_ms']:>9.3f}{s['p95_ms']:>9.3f}{s['mean_ms']:>9.3f}"
             for name in STAGES if (s := stages.get(name))]
    return rows


def sweep_table(rows: list[dict[str, Any]]) -> list[str]:
    """The --sweep rows: speed against recall per detector setting."""
    keys = list(rows[0]["settings"])
    lines = ["\nsweep (alternated; * = configured; recall = frames with a face classified):",
             "  " + " ".join(f"{key:>15}" for key in keys)
             + " |    fps | detect ms/frame | recall | detect hits | faces/frame"]
    lines += ["  " + " ".join(f"{w['settings'][key]!s:>15}" for key in keys)
              + f" | {w['fps']:6.1f} | {w['detect_ms']:15.2f} | {w['recall']:6.1%} | "
              f"{w['detect_recall']:11.1%} | {w['faces_per_frame']:.2f}{' *' if w['configured'] else ''}"
              for w in rows]
    return lines


def detectors_table(rows: list[dict[str, Any]], recommendation: str) -> list[str]:
    """The --detector rows: each detector on the same frames, alternated, and which to use."""
    lines = ["\ndetectors (alternated on the same frames; recall = frames with a face classified):",
             "  detector |    fps | detect ms/run | recall | detect hits | faces/frame"]
    lines += [f"  {w['type']:<8} | {w['fps']:6.1f} | {w['detect_ms_per_run']:13.2f} | {w['recall']:6.1%} | "
              f"{w['detect_recall']:11.1%} | {w['faces_per_frame']:.2f}" for w in rows]
    return [*lines, f"  {recommendation}"]


def report(r: dict[str, Any]) -> str:
    """The human-readable report."""
    lines = [
        f"fer-edge bench: {r['source']}, {r['frames']} frames of {r['frame_size'][0]}x{r['frame_size'][1]}",
        *settings_lines(r["settings"]),
        *stage_table(r["stages"]),
        f"  end to end {r['fps']:.1f} fps ({r['ms_per_frame']:.2f} ms/frame); "
        f"{r['faces_per_frame']:.2f} faces/frame; frames with a face {r['recall']:.1%} "
        f"(detection runs with a face {r.get('detect_recall', 0):.1%})",
        f"  CPU {r['cpu_s']:.1f} s ({r['cpu_ms_per_frame']:.2f} ms/frame, "
        f"{r['cpu_cores']:.2f} cores busy), peak RSS {r['peak_rss_kib'] / 1024:.0f} MiB",
        "  time per frame: " + ", ".join(f"{name} {share:.0%}" for name, share in r["time_shares"].items()),
        f"  {r['advice']}",
    ]
    if rows := r.get("sweep"):
        lines += sweep_table(rows)
    if rows := r.get("detectors"):
        lines += detectors_table(rows, r["recommendation"])
    return "\n".join(lines)
