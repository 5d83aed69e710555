"""Distillation targets: one teacher's, or an ensemble's, mirror-averaged scores blended with labels."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .data import LABELS, SIDE, Split

log = logging.getLogger(__name__)


def distilled(hard: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """(N, 7) targets that blend (N, 7) labels with a teacher's probabilities.

    A cross-entropy on these blended targets is Hinton et al. 2015's distillation loss at
    temperature 1: the teacher's scores tell the student which wrong classes a face resembles
    (fear and surprise, sad and neutral), which a one-hot label cannot.
    """
    return ((1 - weight) * hard + weight * teacher).astype(np.float32)


def teacher_key(teachers: Sequence[Path], faces: int, centre_crop: int = SIDE) -> dict:
    """What the cached scores were computed from: each teacher file, its size and mtime, the views."""
    key: dict = {"faces": faces, "teachers": [
        {"path": str(t), "bytes": t.stat().st_size, "mtime_ns": t.stat().st_mtime_ns} for t in teachers]}
    if centre_crop != SIDE:  # caches written before the option keep their key
        key["centre_crop"] = centre_crop
    return key


def teacher_probabilities(teachers: Sequence[Path], split: Split, cache: Path,
                          centre_crop: int = SIDE) -> np.ndarray:
    """(N, 7) mean of the teachers' mirror-averaged probabilities on ``split``, cached in the run.

    Mirror-averaged scores do not change when a face is flipped, so they stay valid targets
    for the flipped faces the augmentation feeds the student. An ensemble's mean is a better
    teacher than any member (Hinton et al. 2015, section 3). ``centre_crop`` frames every view
    as ``quantize --centre-crop`` does. ``cache`` (``.npy``) is reused while the ``.json``
    beside it names the same teacher files, face count and views.
    """
    from .evaluate import predict_keras
    from .model import TTA

    key, key_file = teacher_key(teachers, len(split), centre_crop), cache.with_suffix(".json")
    if cache.exists() and key_file.exists() and json.loads(key_file.read_text()) == key:
        scores = np.load(cache)
        if scores.shape == (len(split), len(LABELS)):
            return scores
    total = np.zeros((len(split), len(LABELS)), np.float64)
    for teacher in teachers:
        log.info("scoring %d training faces with the teacher %s", len(split), teacher)
        total += predict_keras(teacher, split.images, TTA(centre_crop=centre_crop))
    scores = (total / len(teachers)).astype(np.float32)
    np.save(cache, scores)
    key_file.write_text(json.dumps(key, indent=2) + "\n")
    return scores
