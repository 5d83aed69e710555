"""The statistics of scripts/research/real_faces.py: who a photo shows, the halves and folds by
person, recall tables, and intervals from drawing the people again (bootstrap by person).

No image or model here: tests import it with the host side's extra (scikit-learn) alone.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np

SPLITS = ("all", "dev", "held-out")


class WildDataError(ValueError):
    """A labels.csv or a scores file that cannot be used as it is; the message says why."""


def read_rows(folder: Path) -> list[dict]:
    """``folder/labels.csv``'s rows (``image``, ``emotion``), at least one."""
    with (folder / "labels.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"image", "emotion"} <= set(rows[0]):
        raise WildDataError(f"{folder / 'labels.csv'} needs an image,emotion header and one row a photo")
    return rows


def person(image: str) -> str:
    """The person a wild photo shows: its name before ``_NNNN``."""
    return Path(image).stem.rsplit("_", 1)[0]


def split_of(image: str) -> str:
    """``dev`` or ``held-out``, fixed per person (half the people each, by a hash of the name)."""
    return "held-out" if hashlib.sha1(person(image).encode()).digest()[0] % 2 else "dev"


def in_split(image: str, split: str) -> bool:
    """Whether a photo belongs to ``split`` (``all``, ``dev`` or ``held-out``)."""
    return split == "all" or split_of(image) == split


def fold_of(rows: list[dict], folds: int) -> list[int]:
    """Each row's fold (0 to ``folds``-1): whole people per fold.

    scikit-learn's StratifiedGroupKFold (greedy, fixed seed) deals the people so that each fold's
    share of each expression is near the whole set's; a class held by few people (the wild set's
    disgust: six) cannot be spread further than its people. The folds depend on ``folds``: a
    model trained for fold K of 5 belongs to no fold of 4.
    """
    from sklearn.model_selection import StratifiedGroupKFold  # host-side research only

    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=0)
    fold = [0] * len(rows)
    emotions = [row["emotion"] for row in rows]
    people = [person(row["image"]) for row in rows]
    try:
        for k, (_, test) in enumerate(splitter.split(np.zeros(len(rows)), emotions, people)):
            for i in test:
                fold[i] = k
    except ValueError as error:  # more folds than the photos of a class or the people allow
        raise WildDataError(f"cannot deal these photos into {folds} folds: {error}") from None
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
    names, who = np.unique(people, return_inverse=True)
    classes, shown_class = np.unique(truth, return_inverse=True)
    shown = np.zeros((len(names), len(classes)))  # photos of each class per person
    np.add.at(shown, (who, shown_class), 1)

    def right_of(read: list[str | None]) -> np.ndarray:  # of them, read right
        right = np.zeros_like(shown)
        np.add.at(right, (who, shown_class), [t == p for t, p in zip(truth, read, strict=True)])
        return right

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


def read_scores(path: Path, rows: list[dict]) -> list[str | None]:
    """Each row's label in a ``wild --scores`` file (None where no face was found)."""
    try:
        saved = json.loads(path.read_text())
        labels, scores = list(saved["labels"]), saved["scores"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise WildDataError(f"{path} is not a scores file written by `real_faces.py wild --scores` "
                            f"({error.__class__.__name__}: {error})") from None
    missing = [row["image"] for row in rows if row["image"] not in scores]
    if missing:
        raise WildDataError(f"{path} has no entry for {len(missing)} of the {len(rows)} photos "
                            f"(first: {missing[0]}); write it with `wild --scores` on the same folder")
    return [None if scores[row["image"]] is None else labels[int(np.argmax(scores[row["image"]]))]
            for row in rows]


def compare_scores(rows: list[dict], new: Path, old: Path, split: str, labels: tuple[str, ...]) -> dict:
    """Two ``--scores`` files of the same photos: each one's figures and the paired difference."""
    rows = [row for row in rows if in_split(row["image"], split)]
    truth, people = [row["emotion"] for row in rows], [person(row["image"]) for row in rows]
    reads = [read_scores(path, rows) for path in (new, old)]
    tables = [recall_table(truth, read, labels) for read in reads]
    return {"split": split, "photos": len(rows), "new": str(new), "old": str(old),
            "accuracy": [t["accuracy"] for t in tables], "macro_recall": [t["macro_recall"] for t in tables],
            "recall": {label: [t["recall"][label] for t in tables] for label in tables[0]["recall"]},
            "difference_interval": person_interval(truth, reads[0], people, baseline=reads[1])}
