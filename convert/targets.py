"""What the network is trained and selected towards: FER2013 or FER+ targets, class weights.

Distillation's blend of labels and teachers' scores is ``convert.teachers.distilled``.
"""

from __future__ import annotations

import numpy as np

from .data import LABELS, DataError, Split


def class_weights(labels: np.ndarray, mode: str = "sqrt") -> np.ndarray | None:
    """(7,) per-class loss weights with mean 1 over the samples; None for ``mode`` "none".

    "sqrt": 1 / sqrt(count), the shipped models' choice. Disgust has 436 training faces
    against Happy's 7,215; full inverse weighting ("inverse": 1 / count) makes the model
    over-predict the rare classes, while the square root lifts Disgust's recall and costs
    little overall accuracy.
    """
    if mode == "none":
        return None
    counts = np.maximum(np.bincount(labels, minlength=len(LABELS)).astype(np.float64), 1)
    weights = {"sqrt": 1.0 / np.sqrt(counts), "inverse": 1.0 / counts}[mode]
    return (weights / (weights[labels].mean())).astype(np.float32)


def targets(split: Split, labels: str, original_share: float = 0.0) -> np.ndarray:
    """Training targets: one-hot FER2013 labels ("fer"), or FER+ vote shares ("ferplus", npz
    only) with ``original_share`` of the one-hot FER2013 label mixed in.

    The FER+ votes for contempt, unknown and not-a-face are left out of the shares
    (convert.data.ferplus_soft_labels); faces with no FER+ vote for any of the seven classes
    keep their FER2013 label.
    """
    one_hot = np.eye(len(LABELS), dtype=np.float32)[split.labels]
    if labels == "fer":
        return one_hot
    if split.soft_labels is None:
        raise DataError("--labels ferplus needs fer2013.npz, which carries the FER+ votes")
    return (1 - original_share) * split.soft_labels + original_share * one_hot


def selection_split(split: Split, labels: str) -> tuple[Split, np.ndarray]:
    """The PublicTest faces and one-hot targets model selection scores.

    With FER+ labels the run is selected on the FER+ majority (faces without a 7-class
    majority left out), the figure the project reports first; otherwise on FER2013's labels.
    """
    if labels == "fer" or split.ferplus_majority is None:
        return split, np.eye(len(LABELS), dtype=np.float32)[split.labels]
    keep = np.flatnonzero(split.ferplus_majority >= 0)
    kept = split.subset(keep)
    assert kept.ferplus_majority is not None
    return kept, np.eye(len(LABELS), dtype=np.float32)[kept.ferplus_majority]
