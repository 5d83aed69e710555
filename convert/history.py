"""A training run's history.csv: the best PublicTest accuracy so far, and its curves as a PNG."""

from __future__ import annotations

import csv
from pathlib import Path


def best_so_far(history: Path) -> float | None:
    """Highest val_accuracy in a run's history.csv, so a resumed run keeps its best model."""
    if not history.exists():
        return None
    with history.open() as handle:
        values = [float(row["val_accuracy"]) for row in csv.DictReader(handle)]
    return max(values, default=None)


def plot_history(history: Path, out: Path) -> None:
    """Write the loss and accuracy curves of a run to a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with history.open() as handle:
        rows = list(csv.DictReader(handle))
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("loss", "train (augmented)"), ("val_loss", "PublicTest")):
        ax_loss.plot(epochs, [float(r[key]) for r in rows], label=label)
    for key, label in (("accuracy", "train (augmented)"), ("val_accuracy", "PublicTest")):
        ax_acc.plot(epochs, [100 * float(r[key]) for r in rows], label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
