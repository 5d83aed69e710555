r"""How the pipeline reads real faces: labelled photos from outside FER2013, and a video clip.

    python scripts/research/real_faces.py wild ../shared/data/wild
    python scripts/research/real_faces.py wild ../shared/data/wild --model fer_edge_fast_int8.tflite
    python scripts/research/real_faces.py wild ../shared/data/wild --detector haar --scores scores.json
    python scripts/research/real_faces.py crops ../shared/data/wild --split dev --out wild_dev.npz
    python scripts/research/real_faces.py crops ../shared/data/wild --folds 5 --leave-out 0 --out fold0.npz
    python scripts/research/real_faces.py cv ../shared/data/wild fold0.tflite fold1.tflite fold2.tflite ...
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

``cv``: cross-validation by person. The people are dealt into as many folds as models are given
(whole people per fold, each fold's share of each expression near the whole set's: scikit-learn's
``StratifiedGroupKFold``, fixed seed); every photo is read by the model of its fold, the one
trained on ``crops --folds N --leave-out K`` with the same N, so each figure comes from people its
model never saw. The tables are printed as ``wild`` prints them, for all photos and each half.

``compare``: two ``--scores`` files of the same photos: each one's accuracy, macro recall and
per-class recall, and a 95% interval of the difference from the same draws of people (paired).

``clip``: ``fer-edge run``'s loop over a video with the config's settings (every frame, no
broker): the share of each published label over all per-frame results (what
``--publish every`` sends) and the emotion changes per minute (what ``--publish change``
sends, as the ``change`` events of each face track).
"""

from __future__ import annotations

import argparse
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
from fer_edge.errors import EdgeError
from fer_edge.faces import crop_face
from fer_edge.photos import FacePredictor, still_detector
from fer_edge.sources import to_gray
from wild_stats import (
    SPLITS,
    WildDataError,
    compare_scores,
    fold_of,
    in_split,
    person,
    person_interval,
    read_rows,
    recall_table,
)


def evaluate_wild(folder: Path, rows: list[dict], models: list[str | None], detector: str,
                  scores_out: Path | None) -> dict:
    """Every photo of ``folder/labels.csv`` through the still-image path; the tables by split.

    One model reads every photo; several (cross-validation) each read their own fold's photos.
    """
    detect = still_detector(DetectorConfig(type=detector))
    predictors = [FacePredictor(detect, TFLiteExpressionClassifier(model)) for model in models]
    labels = predictors[0].classifier.labels
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
    if len(models) > 1:
        report["fold_photos"] = [fold.count(k) for k in range(len(models))]
    for split in SPLITS:
        keep = [i for i, row in enumerate(rows) if in_split(row["image"], split)]
        truth, read = [rows[i]["emotion"] for i in keep], [predicted[i] for i in keep]
        report[split] = recall_table(truth, read, labels)
        people = [person(rows[i]["image"]) for i in keep]
        report[split]["interval_by_person"] = person_interval(truth, read, people)
    return report


def write_crops(folder: Path, rows: list[dict], keep: Callable[[int, dict], bool], out: Path) -> int:
    """The largest face of each photo ``keep`` takes, as the classifier sees it, into an npz."""
    predictor = FacePredictor(still_detector(DetectorConfig()), TFLiteExpressionClassifier())
    images, labels = [], []
    for i, row in enumerate(rows):
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
    if "fold_photos" in report:
        print("photos per fold: " + ", ".join(map(str, report["fold_photos"])))
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


def build_parser() -> argparse.ArgumentParser:
    """The command line: wild, crops, cv, compare, clip."""
    parser = argparse.ArgumentParser(description=__doc__.replace("``", "`"),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    folder_help = "a folder with labels.csv (image,emotion) and images/"
    wild = sub.add_parser("wild", help="labelled photos: recall per class, confusion, accuracy, macro recall")
    wild.add_argument("folder", type=Path, help=folder_help)
    crops = sub.add_parser("crops", help="faces of one half or of all folds but one, cropped as the "
                                         "device does, as training data")
    crops.add_argument("folder", type=Path, help=folder_help)
    which = crops.add_mutually_exclusive_group()
    which.add_argument("--split", choices=SPLITS, default="dev",
                       help="the half to crop, or all (default: dev)")
    which.add_argument("--folds", type=int, help="instead of a half: every fold of FOLDS but --leave-out's")
    crops.add_argument("--leave-out", type=int, help="the fold (0 to FOLDS-1) to leave out")
    crops.add_argument("--out", type=Path, required=True, help="the .npz to write")
    cv = sub.add_parser("cv", help="cross-validation by person: each fold's photos read by that fold's model")
    cv.add_argument("folder", type=Path, help=folder_help)
    cv.add_argument("models", nargs="+", metavar="MODEL",
                    help="one .tflite per fold, in fold order: model K trained on `crops --folds N "
                         "--leave-out K` with N the number of models given")
    compare = sub.add_parser("compare", help="two --scores files of the same photos, compared by person")
    compare.add_argument("folder", type=Path, help=folder_help)
    compare.add_argument("new", type=Path, help="a --scores file of wild or cv")
    compare.add_argument("old", type=Path, help="the --scores file to compare against")
    compare.add_argument("--split", choices=SPLITS, default="held-out", help="the photos (default: held-out)")
    clip = sub.add_parser("clip", help="a video: label shares and emotion changes per minute")
    clip.add_argument("clip", type=Path, help="a video file")
    clip.add_argument("--config", help="a fer-edge config file (default: the defaults)")
    for p in (wild, cv, clip):
        if p is not cv:
            p.add_argument("--model", help="a .tflite model (default: the shipped default model)")
        p.add_argument("--detector", choices=("yunet", "haar"), default=None if p is clip else "yunet",
                       help="the face detector (default: " + ("the config's" if p is clip else "yunet") + ")")
        p.add_argument("--json", action="store_true", help="print the report as JSON")
    for p in (wild, cv):
        p.add_argument("--scores", type=Path, help="write each photo's probabilities here (JSON)")
    return parser


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """One subcommand; user errors go to ``parser.error``."""
    if args.what != "clip":
        if not (args.folder / "labels.csv").is_file():
            parser.error(f"{args.folder} has no labels.csv")
        rows = read_rows(args.folder)
        unknown = {row["emotion"] for row in rows} - set(DEFAULT_LABELS)
        if unknown:
            parser.error(f"{args.folder / 'labels.csv'} names expressions the models do not know: "
                         f"{', '.join(sorted(unknown))} (known: {', '.join(DEFAULT_LABELS)})")
        missing = [row["image"] for row in rows if not (args.folder / "images" / row["image"]).is_file()]
        if missing and args.what != "compare":
            parser.error(f"{len(missing)} of the {len(rows)} photos in labels.csv are not in "
                         f"{args.folder / 'images'} (first: {missing[0]})")
    if args.what in ("wild", "cv"):
        models = args.models if args.what == "cv" else [args.model]
        if args.what == "cv" and len(models) < 2:
            parser.error("cv needs one model per fold, at least two")
        if args.scores and not args.scores.parent.is_dir():
            parser.error(f"--scores: {args.scores.parent} is not a folder")
        report = evaluate_wild(args.folder, rows, models, args.detector, args.scores)
        print(json.dumps(report, indent=1)) if args.json else print_wild(report)
    elif args.what == "compare":
        print_comparison(compare_scores(rows, args.new, args.old, args.split, DEFAULT_LABELS))
    elif args.what == "crops":
        if (args.folds is None) != (args.leave_out is None):
            parser.error("--folds and --leave-out go together")
        if not args.out.parent.is_dir():
            parser.error(f"--out: {args.out.parent} is not a folder")
        if args.folds is not None:
            people = len({person(row["image"]) for row in rows})
            if not (2 <= args.folds <= people and 0 <= args.leave_out < args.folds):
                parser.error(f"--folds must be 2 to {people} (the people in labels.csv) and "
                             "--leave-out 0 to FOLDS-1")
            fold = fold_of(rows, args.folds)
            keep = lambda i, row: fold[i] != args.leave_out  # noqa: E731
        else:
            keep = lambda i, row: in_split(row["image"], args.split)  # noqa: E731
        print(f"wrote {write_crops(args.folder, rows, keep, args.out)} faces to {args.out}")
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.what]
    try:
        run(args, parser)
    except (WildDataError, EdgeError) as error:  # a bad labels.csv, scores file or model
        parser.error(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
