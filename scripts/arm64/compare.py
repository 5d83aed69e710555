"""How ``make check-arm64`` compares a run with the native one: what must be equal, what may differ."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PRINTED_4_DECIMALS = 1e-4  # two values within 1e-6 can print 1e-4 apart at 4 decimals


@dataclass
class Differences:
    """What differs from the native run; score differences within the tolerance do not count."""

    tolerance: float
    problems: list[str] = field(default_factory=list)
    largest: float = 0.0  # the largest score difference seen, counted or not

    def exact(self, where: str, ours: dict, native: dict, keys: Sequence[str]) -> None:
        """Fields that must be equal."""
        self.problems += [f"{where} {key} {ours.get(key)}, native {native[key]}"
                          for key in keys if ours.get(key) != native[key]]

    def scores(self, where: str, ours: dict[str, float], native: dict[str, float],
               rounding: float = 0.0) -> None:
        """Scores label by label; ``rounding``: what printing them rounded may add."""
        for label, score in native.items():
            delta = abs(ours.get(label, math.inf) - score)
            self.largest = max(self.largest, delta)
            if delta > self.tolerance + rounding + 1e-12:
                self.problems.append(f"{where} {label} {ours.get(label)}, native {score}")

    def summary(self, what: str) -> str:
        """The step's detail: what was compared, the first difference, the largest score difference."""
        largest = f"largest score difference {self.largest:.2g} (tolerance {self.tolerance:.2g})"
        if not self.problems:
            return f"{what}, same as native; {largest}"
        return f"{len(self.problems)} differences in {what}, first: {self.problems[0]}; {largest}"


def predict_lines(stdout: str) -> dict[str, dict]:
    """``fer-edge predict``'s JSON lines by image file name."""
    items = (json.loads(line) for line in stdout.splitlines() if line.startswith("{"))
    return {Path(item["image"]).name: item for item in items}


def compare_predict(ours: dict[str, dict], native: dict[str, dict], tolerance: float) -> Differences:
    """Per photo: as many faces, the same boxes and labels, scores (4 decimals) within tolerance."""
    diff = Differences(tolerance)
    for name, reference in native.items():
        faces, theirs = ours.get(name, {}).get("faces"), reference["faces"]
        if faces is None or len(faces) != len(theirs):
            found = "no" if faces is None else len(faces)
            diff.problems.append(f"{name}: {found} faces, native {len(theirs)}")
            continue
        for index, (a, b) in enumerate(zip(faces, theirs, strict=True)):
            diff.exact(f"{name} face {index}", a, b, ("box", "emotion"))
            diff.scores(f"{name} face {index}", a["scores"], b["scores"], rounding=PRINTED_4_DECIMALS)
    return diff


def compare_events(ours: list[dict], native: list[dict], tolerance: float) -> Differences:
    """Per (frame, track id): the same events, boxes, labels and reasons; scores within tolerance."""
    mine = {(e["frame"], e["face_id"]): e for e in ours}
    theirs = {(e["frame"], e["face_id"]): e for e in native}
    diff = Differences(tolerance)
    diff.problems += [f"frame {f} track {t}: missing" for f, t in sorted(theirs.keys() - mine.keys())]
    diff.problems += [f"frame {f} track {t}: not in the native run"
                      for f, t in sorted(mine.keys() - theirs.keys())]
    for key in sorted(theirs.keys() & mine.keys()):
        a, b, where = mine[key], theirs[key], f"frame {key[0]} track {key[1]}"
        diff.exact(where, a, b, ("box", "emotion", "reason"))
        diff.scores(where, a["scores"], b["scores"])
        diff.scores(where, {"confidence": a["confidence"]}, {"confidence": b["confidence"]},
                    rounding=PRINTED_4_DECIMALS)
    return diff


def describe_events(events: list[dict]) -> str:
    """``51 events, frames 0-56, tracks 1,2``."""
    if not events:
        return "0 events"
    frames = [e["frame"] for e in events]
    tracks = ",".join(str(t) for t in sorted({e["face_id"] for e in events}))
    return f"{len(events)} events, frames {min(frames)}-{max(frames)}, tracks {tracks}"
