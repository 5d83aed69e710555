"""Load FER2013 from any of its three common forms into uint8 arrays.

Forms:
  * Kaggle's ``fer2013.csv`` (columns ``emotion,pixels,Usage``),
  * Kaggle's image folders (``train/<class>/*.png``, ``test/<class>/*.png``),
  * ``fer2013.npz`` (the full set with the Usage split and FER+ votes).

Every loader returns a :class:`Split`; bad data raises :class:`DataError` with the file
and the problem in its message.
"""

from __future__ import annotations

import csv
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SPLITS = ("Training", "PublicTest", "PrivateTest")
SIDE = 48

# FER+ vote columns (neutral, happiness, surprise, sadness, anger, disgust, fear, contempt,
# unknown, NF) that map onto our seven classes, in LABELS order. Contempt, unknown and
# not-a-face have no FER2013 counterpart and are left out.
_FERPLUS_COLUMNS = (4, 5, 6, 1, 3, 2, 0)
NO_MAJORITY = -1  # ferplus_majority's value for a face without a 7-class FER+ majority
_SPLIT_ALIASES = {
    "train": "Training", "training": "Training",
    "val": "PublicTest", "valid": "PublicTest", "publictest": "PublicTest",
    "test": "PrivateTest", "privatetest": "PrivateTest",
}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


class DataError(Exception):
    """The data set is missing, malformed or holds no rows for the split asked for."""


@dataclass(frozen=True)
class Split:
    """One split of FER2013: images (N, 48, 48) uint8, labels (N,) uint8 in LABELS order."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    soft_labels: np.ndarray | None = None  # (N, 7) float32 FER+ vote shares, npz only
    ferplus_majority: np.ndarray | None = None  # (N,) int8 FER+ majority in LABELS order or -1

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> Split:
        """Return the rows at ``index`` as a new split."""
        soft = None if self.soft_labels is None else self.soft_labels[index]
        majority = None if self.ferplus_majority is None else self.ferplus_majority[index]
        return Split(self.name, self.images[index], self.labels[index], soft, majority)

    def joined(self, other: Split, repeat: int = 1) -> Split:
        """This split with ``other``'s faces appended ``repeat`` times; where this split carries FER+
        votes and ``other`` does not, ``other``'s labels stand in for its vote shares and majority."""
        rows = np.tile(np.arange(len(other)), repeat)
        extra = other.subset(rows)
        soft = majority = None
        if self.soft_labels is not None and self.ferplus_majority is not None:
            one_hot = np.eye(len(LABELS), dtype=np.float32)[extra.labels]
            shares = one_hot if extra.soft_labels is None else extra.soft_labels
            soft = np.concatenate([self.soft_labels, shares])
            own = extra.labels.astype(np.int8) if extra.ferplus_majority is None else extra.ferplus_majority
            majority = np.concatenate([self.ferplus_majority, own])
        return Split(self.name, np.concatenate([self.images, extra.images]),
                     np.concatenate([self.labels, extra.labels]), soft, majority)

    def scored_by(self, labels: str) -> Split:
        """The split as ``labels`` ("fer" or "ferplus") scores it: itself, or its faces with a
        7-class FER+ majority, labelled with it (DataError where the data has no FER+ votes)."""
        if labels == "fer":
            return self
        if self.ferplus_majority is None:
            raise DataError("FER+ labels need fer2013.npz, which carries the FER+ votes")
        kept = self.subset(np.flatnonzero(self.ferplus_majority != NO_MAJORITY))
        assert kept.ferplus_majority is not None
        return Split(f"{self.name} (FER+ majority)", kept.images, kept.ferplus_majority.astype(np.uint8),
                     kept.soft_labels, kept.ferplus_majority)


def canonical_split(name: str) -> str:
    """Map ``train``/``val``/``test`` and any capitalisation onto a FER2013 Usage name."""
    key = name.strip().lower()
    if key in _SPLIT_ALIASES:
        return _SPLIT_ALIASES[key]
    raise DataError(f"unknown split {name!r}: use one of {', '.join(SPLITS)} (or train, val, test)")


def load(path: str | Path, split: str) -> Split:
    """Load ``split`` from a .npz file, a fer2013.csv or an image-folder root."""
    path = Path(path)
    split = canonical_split(split)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder; pass the path to fer2013.npz, "
                        "fer2013.csv or a folder holding train/ and test/")
    if path.is_dir():
        result = load_folders(path, split)
    elif path.suffix == ".npz":
        result = load_npz(path, split)
    elif path.suffix == ".csv":
        result = load_csv(path, split)
    else:
        raise DataError(f"{path}: unknown data format; expected a .npz, a .csv or a folder")
    if len(result) == 0:
        raise DataError(f"{path}: split {split} is empty")
    return result


def load_npz(path: Path, split: str) -> Split:
    """Load a split of fer2013.npz, with FER+ soft labels."""
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a .npz archive (numpy.savez writes a zip)")
    try:
        data = np.load(path)
        missing = [name for name in ("images", "labels", "usage") if name not in data.files]
        if missing:
            raise DataError(f"{path}: no {' or '.join(missing)} array; expected images (N, {SIDE}, {SIDE}) "
                            "uint8, labels (N,) 0..6 and usage (N,) 0 Training, 1 PublicTest, 2 PrivateTest")
        usage, images, labels = data["usage"], data["images"], data["labels"]
        votes = data["ferplus_votes"] if "ferplus_votes" in data.files else None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise DataError(f"{path}: images have shape {images.shape}, expected (N, {SIDE}, {SIDE})")
    if images.dtype != np.uint8:
        raise DataError(f"{path}: images are {images.dtype}, expected uint8 grey levels 0..255")
    if not len(images) == len(labels) == len(usage):
        raise DataError(f"{path}: {len(images)} images, {len(labels)} labels and {len(usage)} usage "
                        "entries; expected one of each per face")
    if labels.size and (labels.min() < 0 or labels.max() >= len(LABELS)):
        raise DataError(f"{path}: labels run from {labels.min()} to {labels.max()}, expected "
                        f"0..{len(LABELS) - 1} ({', '.join(LABELS)})")
    rows = usage == SPLITS.index(split)
    if votes is None:
        return Split(split, images[rows], labels[rows].astype(np.uint8))
    return Split(split, images[rows], labels[rows].astype(np.uint8),
                 ferplus_soft_labels(votes[rows], labels[rows]), ferplus_majority(votes[rows]))


def ferplus_soft_labels(votes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Turn FER+ votes into 7-class distributions; rows with no usable vote keep their label."""
    mapped = votes[:, _FERPLUS_COLUMNS].astype(np.float32)
    totals = mapped.sum(axis=1, keepdims=True)
    one_hot = np.eye(len(LABELS), dtype=np.float32)[labels]
    return np.where(totals > 0, mapped / np.maximum(totals, 1), one_hot)


def ferplus_majority(votes: np.ndarray) -> np.ndarray:
    """(N,) int8 FER+ majority labels in LABELS order from (N, 10) vote counts; -1: no majority.

    Barsoum et al. 2016's majority vote (arXiv:1608.01041; microsoft/FERPlus's
    ``_process_data``): single votes are dropped as outliers, then a face's label is the
    emotion holding more than half of the remaining votes. A face without one counts as
    "unknown". Faces whose majority is contempt, unknown or not-a-face have no FER2013 class
    and get -1 (``NO_MAJORITY``).
    """
    kept = np.where(votes > 1, votes, 0).astype(np.int64)
    top = kept.argmax(axis=1)
    has_majority = 2 * kept.max(axis=1) > kept.sum(axis=1)
    to_label = np.full(votes.shape[1], NO_MAJORITY, np.int8)
    to_label[list(_FERPLUS_COLUMNS)] = np.arange(len(LABELS))
    return np.where(has_majority, to_label[top], NO_MAJORITY).astype(np.int8)


def load_csv(path: Path, split: str) -> Split:
    """Load a split of Kaggle's fer2013.csv."""
    csv.field_size_limit(sys.maxsize)
    images, labels = [], []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"emotion", "pixels", "Usage"} - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                            "expected the header emotion,pixels,Usage")
        for line, row in enumerate(reader, start=2):
            if row["Usage"] != split:
                continue
            values = row["pixels"].split()
            if len(values) != SIDE * SIDE:
                raise DataError(f"{path}:{line}: pixels has {len(values)} values, "
                                f"expected {SIDE * SIDE} (48x48)")
            try:
                emotion = int(row["emotion"])
                pixels = np.array(values, dtype=np.int32)
            except ValueError:
                raise DataError(f"{path}:{line}: emotion and pixels must be integers") from None
            if not 0 <= emotion < len(LABELS) or pixels.min() < 0 or pixels.max() > 255:
                raise DataError(f"{path}:{line}: emotion must be 0..6 and pixels 0..255")
            images.append(pixels.astype(np.uint8).reshape(SIDE, SIDE))
            labels.append(emotion)
    if not images:
        raise DataError(f"{path}: split {split} is empty (no row has Usage={split})")
    return Split(split, np.stack(images), np.array(labels, dtype=np.uint8))


def load_folders(root: Path, split: str) -> Split:
    """Load a split of Kaggle's image-folder layout (``train/`` and ``test/`` of class folders).

    ``test/`` holds both test splits; where file names carry the Usage prefix
    (``PublicTest_123.jpg``) only the split asked for is kept.
    """
    import cv2  # OpenCV decodes the images; it is a dependency of the package anyway

    folder = root / ("train" if split == "Training" else "test")
    if not folder.is_dir():
        raise DataError(f"{root}: no {folder.name}/ folder; expected train/<class>/ and test/<class>/")
    files: list[tuple[Path, int]] = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        name = class_dir.name.lower()
        if name not in LABELS:
            raise DataError(f"{class_dir}: unknown class folder {class_dir.name!r}; "
                            f"expected one of {', '.join(LABELS)}")
        files += [(f, LABELS.index(name)) for f in sorted(class_dir.iterdir())
                  if f.suffix.lower() in _IMAGE_SUFFIXES]
    if split != "Training" and any(f.name.startswith(("PublicTest_", "PrivateTest_")) for f, _ in files):
        files = [(f, label) for f, label in files if f.name.startswith(split + "_")]
    if not files:
        raise DataError(f"{folder}: split {split} is empty (no images in its class folders)")
    images = np.empty((len(files), SIDE, SIDE), np.uint8)
    for i, (file, _) in enumerate(files):
        image = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise DataError(f"{file}: not a readable image")
        if image.shape != (SIDE, SIDE):
            image = cv2.resize(image, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        images[i] = image
    return Split(split, images, np.array([label for _, label in files], dtype=np.uint8))
