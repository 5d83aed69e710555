r"""How the pipeline reads real faces: labelled photos from outside FER2013, and a video clip.

    python scripts/research/real_faces.py wild ../shared/data/wild
    python scripts/research/real_faces.py wild ../shared/data/wild --model fer_edge_fast_int8.tflite
    python scripts/research/real_faces.py wild ../shared/data/wild --detector haar --scores scores.json
    python scripts/research/real_faces.py crops ../shared/data/wild --split dev --out wild_dev.npz
    python scripts/research/real_faces.py crops ../shared/data/wild --folds 5 --leave-out 0 --out fold0.npz
    python scripts/research/real_faces.py cv ../shared/data/wild --models fold0.tflite ... fold4.tflite
    python scripts/research/real_faces.py compare ../shared/data/wild new.json old.json --split held-out
    python scripts/research/real_faces.py clip ../shared/media/video/fer_woman2.mp4

``wild``: ``fer-edge predict``'s path on every photo of a folder with a ``labels.csv``
(``image,emotion``): the largest face's label, per class recall, the confusion matrix,
accuracy and macro recall (the mean recall over the classes that have photos), for the whole
set and for its two halves by person (``dev`` and ``held-out``: a photo's person is its name
before ``_NNNN``; the halves come from a hash of the name, so a person is never in both), each
with a 95% interval from drawing the people again (a few people hold most of the rarer classes).
A photo with no face found counts as wrong. ``--scores`` writes each photo's probabilities.

``crops``: the largest face of each photo of one half (``--split dev``), or of every fold but one
(``--folds 5 --leave-out K``), cropped to 48x48 by the device's own crop path, as training data
for ``fer-convert train --extra-data`` (an npz like fer2013.npz, every face in Training).

``cv``: person-disjoint cross-validation. The people are dealt into as many folds as models are
given, each expression spread over the folds about evenly (scikit-learn's greedy
``StratifiedGroupKFold``, fixed seed); every photo is read by the model of its fold, the one
trained with ``crops --leave-out`` that fold, so each figure comes from people its model never
saw. The tables are printed as ``wild`` prints them, for all photos and for each half.

``compare``: two ``--scores`` files of the same photos: each one's accuracy, macro recall and
per-class recall, and a 95% interval of the difference from the same draws of people (paired).

``clip``: ``fer-edge run``'s loop over a video with the config's settings (every frame, no
broker): the share of each published label over all per-frame results (what
``--publish every`` sends) and the emotion changes per minute (what ``--publish change``
sends, as the ``change`` events of each face track).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from fer_edge.classifier import DEFAULT_LABELS, TFLiteExpressionClassifier
from fer_edge.config import DetectorConfig, load_config
from fer_edge.daemon import build_pipeline
from fer_edge.faces import crop_face
from fer_edge.photos import FacePredictor, still_detector
from fer_edge.sources import to_gray

SPLITS = ("all", "dev", "held-out")


def person(image: str) -> str:
    """The person a wild photo shows: its name before ``_NNNN``."""
    return Path(image).stem.rsplit("_", 1)[0]


def split_of(image: str) -> str:
    """``dev`` or ``held-out``, fixed per person (half the people each, by a hash of the name)."""
    return "held-out" if hashlib.sha1(person(image).encode()).digest()[0] % 2 else "dev"


def fold_of(rows: list[dict], folds: int) -> list[int]:
    """Each row's fold (0 to ``folds``-1): whole people per fold, each expression spread about evenly."""
    from sklearn.model_selection import StratifiedGroupKFold  # host-side research only

    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=0)
    fold = [0] * len(rows)
    emotions = [row["emotion"] for row in rows]
    people = [person(row["image"]) for row in rows]
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(rows)), emotions, people)):
        for i in test:
            fold[i] = k
    return fold


def recall_table(truth: list[str], predicted: list[str | None], labels: tuple[str, ...]) -> dict:
    """Accuracy, macro recall over the labels present, per-label recall and the confusion counts."""
    present = [label for label in labels if label in truth]
    pairs = list(zip(truth, predicted, strict=True))
    confusion = {t: Counter(p or "no face" for tt, p in pairs if tt == t) for t in present}
    recall = {t: confusion[t][t] / sum(confusion[t].values()) for t in present}
    return {"photos": len(truth), "accuracy": sum(t == p for t, p in pairs) / max(len(truth), 1),
            "macro_recall": float(np.mean(list(recall.values()))) if recall else 0.0,
            "recall": recall, "confusion": {t: dict(c) for t, c in confusion.items()}}


def person_interval(truth: list[str], predicted: list[str | None], people: list[str],
                    baseline: list[str | None] | None = None, rounds: int = 2000,
                    seed: int = 0) -> dict[str, list[float]]:
    """95% intervals of accuracy and macro recall when the people are drawn again (bootstrap).

    A few people hold many of the rarer classes' photos, so the interval is by person, not by
    photo: each round draws as many people as there are, with replacement, with all their photos.
    With ``baseline`` (another reading of the same photos), the interval of the difference,
    ``predicted`` minus ``baseline``, over the same draws (a paired comparison).
    """
    classes = sorted(set(truth))
    names = sorted(set(people))
    shown = np.zeros((len(names), len(classes)))  # photos of each class per person

    def right_of(read: list[str | None]) -> np.ndarray:  # of them, read right
        right = np.zeros_like(shown)
        for t, p, who in zip(truth, read, people, strict=True):
            right[names.index(who), classes.index(t)] += t == p
        return right

    for t, who in zip(truth, people, strict=True):
        shown[names.index(who), classes.index(t)] += 1
    rng = np.random.default_rng(seed)
    weights = np.stack([np.bincount(draw, minlength=len(names))
                        for draw in rng.integers(0, len(names), size=(rounds, len(names)))])
    shown_r = weights @ shown  # rounds x classes

    def figures(read: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
        right_r = weights @ right_of(read)
        recall = np.where(shown_r > 0, right_r / np.maximum(shown_r, 1), np.nan)
        return right_r.sum(1) / shown_r.sum(1), np.nanmean(recall, axis=1)

    accuracy, macro = figures(predicted)
    if baseline is not None:
        accuracy_b, macro_b = figures(baseline)
        accuracy, macro = accuracy - accuracy_b, macro - macro_b
    return {"accuracy": [float(v) for v in np.percentile(accuracy, [2.5, 97.5])],
            "macro_recall": [float(v) for v in np.percentile(macro, [2.5, 97.5])]}


def compare_scores(folder: Path, new: Path, old: Path, split: str) -> dict:
    """Two ``--scores`` files of the same photos: each one's figures and the paired difference."""
    rows = [row for row in read_rows(folder) if split == "all" or split_of(row["image"]) == split]
    truth, people = [row["emotion"] for row in rows], [person(row["image"]) for row in rows]
    reads = []
    for path in (new, old):
        saved = json.loads(path.read_text())
        reads.append([None if saved["scores"].get(row["image"]) is None
                      else saved["labels"][int(np.argmax(saved["scores"][row["image"]]))] for row in rows])
    tables = [recall_table(truth, read, DEFAULT_LABELS) for read in reads]
    return {"split": split, "photos": len(rows), "new": str(new), "old": str(old),
            "accuracy": [t["accuracy"] for t in tables], "macro_recall": [t["macro_recall"] for t in tables],
            "recall": {label: [t["recall"][label] for t in tables] for label in tables[0]["recall"]},
            "difference_interval": person_interval(truth, reads[0], people, baseline=reads[1])}


def evaluate_wild(folder: Path, models: list[str | None], detector: str,
                  scores_out: Path | None) -> dict:
    """Every photo of ``folder/labels.csv`` through the still-image path; the tables by split.

    One model reads every photo; several (cross-validation) each read their own fold's photos.
    """
    detect = still_detector(DetectorConfig(type=detector))
    predictors = [FacePredictor(detect, TFLiteExpressionClassifier(model)) for model in models]
    labels = predictors[0].classifier.labels
    rows = read_rows(folder)
    fold = fold_of(rows, len(models)) if len(models) > 1 else [0] * len(rows)
    predicted: list[str | None] = []
    scores: dict[str, list[float] | None] = {}
    for row, k in zip(rows, fold, strict=True):
        image = cv2.imread(str(folder / "images" / row["image"]), cv2.IMREAD_COLOR)
        results = predictors[k].classify(image) if image is not None else []
        best = results[0][1] if results else None
        predicted.append(best.label if best else None)
        scores[row["image"]] = [round(best.scores[label], 5) for label in labels] if best else None
    if scores_out:
        scores_out.write_text(json.dumps({"labels": list(labels), "scores": scores}) + "\n")
    report = {"model": ", ".join(str(p.classifier.model_path) for p in predictors), "detector": detector,
              "faces_found": sum(p is not None for p in predicted) / len(rows)}
    for split in SPLITS:
        keep = [i for i, row in enumerate(rows) if split == "all" or split_of(row["image"]) == split]
        truth, read = [rows[i]["emotion"] for i in keep], [predicted[i] for i in keep]
        report[split] = recall_table(truth, read, labels)
        people = [person(rows[i]["image"]) for i in keep]
        report[split]["interval_by_person"] = person_interval(truth, read, people)
    return report


def read_rows(folder: Path) -> list[dict]:
    """``folder/labels.csv``'s rows (``image``, ``emotion``)."""
    with (folder / "labels.csv").open() as handle:
        return list(csv.DictReader(handle))


def write_crops(folder: Path, keep: Callable[[int, dict], bool], out: Path) -> int:
    """The largest face of each photo ``keep`` takes, as the classifier sees it, into an npz."""
    predictor = FacePredictor(still_detector(DetectorConfig()), TFLiteExpressionClassifier())
    images, labels = [], []
    for i, row in enumerate(read_rows(folder)):
        if not keep(i, row):
            continue
        image = cv2.imread(str(folder / "images" / row["image"]), cv2.IMREAD_COLOR)
        faces = predictor.detect(image) if image is not None else []
        if faces:
            images.append(crop_face(to_gray(image), faces[0].box))
            labels.append(DEFAULT_LABELS.index(row["emotion"]))
    np.savez_compressed(out, images=np.stack(images), labels=np.array(labels, np.uint8),
                        usage=np.zeros(len(labels), np.uint8))
    return len(labels)


def evaluate_clip(clip: Path, config_path: str | None, model: str | None, detector: str | None) -> dict:
    """The clip through the daemon's loop (every frame); label shares and changes per minute."""
    overrides = {"source.spec": str(clip), "source.realtime": False, "model.path": model,
                 "detector.type": detector, "publish.mode": "change"}
    pipeline = build_pipeline(load_config(config_path, overrides))
    per_frame: Counter[str] = Counter()
    changes = 0
    pipeline.grabber.start()
    try:
        while (frame := pipeline.grabber.get(timeout=5.0)) is not None or not pipeline.grabber.finished:
            if frame is None:
                continue
            events = pipeline.process(frame)
            per_frame.update(expression.label for _, expression in pipeline.last_results)
            changes += sum(event["reason"] == "change" for event in events)
    finally:
        pipeline.grabber.stop()
    fps = pipeline.grabber.source.fps or 30.0
    minutes = pipeline.grabber.frames_read / fps / 60
    total = sum(per_frame.values())
    return {"clip": clip.name, "frames": pipeline.grabber.frames_read, "seconds": round(minutes * 60, 2),
            "face_results": total,
            "shares": {k: round(per_frame[k] / max(total, 1), 4) for k in DEFAULT_LABELS},
            "changes": changes, "changes_per_minute": round(changes / minutes, 1) if minutes else None}


def print_wild(report: dict) -> None:
    """The wild tables as text."""
    print(f"model {report['model']}, detector {report['detector']}, faces found {report['faces_found']:.1%}")
    for split in SPLITS:
        table = report[split]
        accuracy, macro = table["interval_by_person"]["accuracy"], table["interval_by_person"]["macro_recall"]
        print(f"\n{split}: {table['photos']} photos, accuracy {table['accuracy']:.1%} "
              f"({accuracy[0]:.1%}-{accuracy[1]:.1%}), macro recall {table['macro_recall']:.3f} "
              f"({macro[0]:.3f}-{macro[1]:.3f}); 95% intervals with the people drawn again")
        present = list(table["recall"])
        columns = [*DEFAULT_LABELS, "no face"]
        print(f"{'true/read as':>14} " + " ".join(f"{c[:7]:>7}" for c in columns) + "   recall")
        for label in present:
            row = table["confusion"][label]
            print(f"{label:>14} " + " ".join(f"{row.get(c, 0):>7}" for c in columns)
                  + f"   {table['recall'][label]:.3f}")


def print_comparison(report: dict) -> None:
    """Two readings of the same photos, side by side, with the paired difference's interval."""
    interval = report["difference_interval"]
    print(f"{report['split']}: {report['photos']} photos; new {report['new']}, old {report['old']}")
    for name, fmt, scale in (("accuracy", ".1f", 100), ("macro_recall", ".3f", 1)):
        new, old = report[name]
        low, high = interval[name]
        print(f"{name:>14}: new {new * scale:{fmt}}, old {old * scale:{fmt}}, difference "
              f"{(new - old) * scale:+{fmt}} (95% by person: {low * scale:+{fmt}} to {high * scale:+{fmt}})")
    for label, (new, old) in report["recall"].items():
        print(f"{label:>14}: new {new:.3f}, old {old:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    wild = sub.add_parser("wild", help="labelled photos: recall per class, confusion, accuracy, macro recall")
    wild.add_argument("folder", type=Path, help="a folder with labels.csv and images/")
    crops = sub.add_parser("crops", help="one half's faces, cropped as the device does, as training data")
    crops.add_argument("folder", type=Path, help="a folder with labels.csv and images/")
    crops.add_argument("--split", choices=SPLITS, default="dev", help="the half to crop (default: dev)")
    crops.add_argument("--folds", type=int, help="instead of a half: every fold but --leave-out's")
    crops.add_argument("--leave-out", type=int, help="the fold (0 to FOLDS-1) to leave out")
    crops.add_argument("--out", type=Path, required=True, help="the .npz to write")
    cv = sub.add_parser("cv", help="person-disjoint cross-validation: each fold read by its own model")
    cv.add_argument("folder", type=Path, help="a folder with labels.csv and images/")
    cv.add_argument("--models", nargs="+", required=True,
                    help="one .tflite per fold, in fold order (trained with crops --leave-out K)")
    compare = sub.add_parser("compare", help="two --scores files of the same photos, compared by person")
    compare.add_argument("folder", type=Path, help="a folder with labels.csv and images/")
    compare.add_argument("new", type=Path, help="a --scores file")
    compare.add_argument("old", type=Path, help="the --scores file to compare against")
    compare.add_argument("--split", choices=SPLITS, default="held-out", help="the photos (default: held-out)")
    clip = sub.add_parser("clip", help="a video: label shares and emotion changes per minute")
    clip.add_argument("clip", type=Path)
    clip.add_argument("--config", help="a fer-edge config file (default: the defaults)")
    for p in (wild, cv, clip):
        if p is not cv:
            p.add_argument("--model", help="a .tflite model (default: the shipped default model)")
        p.add_argument("--detector", choices=("yunet", "haar"), default=None if p is clip else "yunet")
        p.add_argument("--json", action="store_true", help="print the report as JSON")
    for p in (wild, cv):
        p.add_argument("--scores", type=Path, help="write each photo's probabilities here (JSON)")
    args = parser.parse_args(argv)
    if args.what in ("wild", "cv", "crops", "compare") and not (args.folder / "labels.csv").is_file():
        parser.error(f"{args.folder} has no labels.csv")
    if args.what in ("wild", "cv"):
        models = args.models if args.what == "cv" else [args.model]
        if args.what == "cv" and len(models) < 2:
            parser.error("cv needs one model per fold, at least two")
        report = evaluate_wild(args.folder, models, args.detector, args.scores)
        print(json.dumps(report, indent=1)) if args.json else print_wild(report)
    elif args.what == "compare":
        print_comparison(compare_scores(args.folder, args.new, args.old, args.split))
    elif args.what == "crops":
        if (args.folds is None) != (args.leave_out is None):
            parser.error("--folds and --leave-out go together")
        if args.folds is not None and not (args.folds >= 2 and 0 <= args.leave_out < args.folds):
            parser.error("--folds must be at least 2 and --leave-out between 0 and FOLDS-1")
        if args.folds is not None:
            fold = fold_of(read_rows(args.folder), args.folds)
            keep = lambda i, row: fold[i] != args.leave_out  # noqa: E731
        else:
            keep = lambda i, row: args.split == "all" or split_of(row["image"]) == args.split  # noqa: E731
        print(f"wrote {write_crops(args.folder, keep, args.out)} faces to {args.out}")
    else:
        if not args.clip.is_file():
            parser.error(f"{args.clip} is not a file")
        report = evaluate_clip(args.clip, args.config, args.model, args.detector)
        if args.json:
            print(json.dumps(report, indent=1))
        else:
            shares = ", ".join(f"{label} {share:.1%}" for label, share in report["shares"].items() if share)
            print(f"{report['clip']}: {report['frames']} frames, {report['seconds']} s; published emotion "
                  f"per frame: {shares or 'no face'}; {report['changes']} changes "
                  f"({report['changes_per_minute']} a minute)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
