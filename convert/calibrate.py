"""Confidence calibration: temperature scaling, negative log-likelihood, ECE, reliability diagrams.

Plain numpy (no scipy). The temperature is fitted on PublicTest and folded into the exported
graph by ``convert.model.with_temperature``; ``fer_convert.quantize --temperature fit`` does both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

ECE_BINS = 15  # Guo et al. 2017's choice


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``, shifted by the maximum so large logits cannot overflow."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def averaged_probabilities(view_logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(N, K) mean over the views of softmax(z / T), from (V, N, K) logits.

    This is what the exported test-time-averaged graph computes (``with_test_time_average``
    averages the views' softmax outputs); with V = 1 it is plain temperature scaling.
    """
    return softmax(view_logits.astype(np.float64) / temperature).mean(axis=0)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log p(true class) in nats over (N, K) probabilities and (N,) labels."""
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.maximum(picked, 1e-12))))


def fit_temperature(view_logits: np.ndarray, labels: np.ndarray, low: float = 0.05,
                    high: float = 20.0, steps: int = 60) -> float:
    """The temperature T in [low, high] that minimises the NLL of ``averaged_probabilities``.

    Guo et al. 2017 ("On Calibration of Modern Neural Networks", ICML) fit T by minimising
    the NLL on a validation set. The NLL of one view is convex in 1 / T; with several views
    averaged it is unimodal in practice, so a log-spaced grid finds the basin and a golden-
    section search on log T refines it to about 1e-4 relative.
    """
    def loss(log_t: float) -> float:
        return negative_log_likelihood(averaged_probabilities(view_logits, np.exp(log_t)), labels)

    grid = np.linspace(np.log(low), np.log(high), steps)
    best = int(np.argmin([loss(t) for t in grid]))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, steps - 1)]
    ratio = (np.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    loss_c, loss_d = loss(c), loss(d)
    while b - a > 1e-4:
        if loss_c < loss_d:
            b, d, loss_d = d, c, loss_c
            c = b - ratio * (b - a)
            loss_c = loss(c)
        else:
            a, c, loss_c = c, d, loss_d
            d = a + ratio * (b - a)
            loss_d = loss(d)
    return float(np.exp((a + b) / 2))


@dataclass(frozen=True)
class Reliability:
    """Per-bin statistics of the top-class confidence: bins equal-width over (0, 1]."""

    edges: np.ndarray  # (bins + 1,) bin edges
    counts: np.ndarray  # (bins,) faces whose confidence falls in the bin
    accuracy: np.ndarray  # (bins,) share of those faces classified right (0 where empty)
    confidence: np.ndarray  # (bins,) their mean confidence (0 where empty)

    @property
    def ece(self) -> float:
        """Expected calibration error: sum over bins of |B|/n |acc(B) - conf(B)|."""
        return float(np.sum(self.counts * np.abs(self.accuracy - self.confidence)) / self.counts.sum())


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> Reliability:
    """Bin (N, K) probabilities by their top score, as Guo et al. 2017 (section 2) define it.

    Bin m holds the faces whose confidence (top probability) lies in ((m - 1) / M, m / M].
    """
    confidence = probabilities.max(axis=1).astype(np.float64)
    correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    safe = np.maximum(counts, 1)
    return Reliability(np.linspace(0, 1, bins + 1), counts,
                       np.bincount(index, correct, minlength=bins) / safe,
                       np.bincount(index, confidence, minlength=bins) / safe)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray,
                               bins: int = ECE_BINS) -> float:
    """ECE of (N, K) probabilities against (N,) labels, 15 equal-width confidence bins.

    ECE = sum_m |B_m| / n |acc(B_m) - conf(B_m)| (Guo et al. 2017, "On Calibration of Modern
    Neural Networks", ICML, eq. 3; Naeini et al. 2015): 0 for a perfectly calibrated model,
    in the same units as accuracy (a share, 0..1).
    """
    return reliability(probabilities, labels, bins).ece


def plot_reliability(probabilities: np.ndarray, labels: np.ndarray, out: Path, title: str,
                     bins: int = ECE_BINS) -> None:
    """Reliability diagram (accuracy against confidence per bin) above a confidence histogram."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = reliability(probabilities, labels, bins)
    centres, width = (r.edges[:-1] + r.edges[1:]) / 2, 1 / bins
    fig, (ax, ax_hist) = plt.subplots(2, 1, figsize=(5, 6.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    filled = r.counts > 0
    ax.bar(centres[filled], r.accuracy[filled], width, edgecolor="black", label="accuracy")
    ax.bar(centres[filled], (r.confidence - r.accuracy)[filled], width, bottom=r.accuracy[filled],
           color="red", alpha=0.3, edgecolor="red", label="gap to confidence")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1),
           title=f"{title}\nECE {100 * r.ece:.2f}% ({bins} bins)")
    ax.legend(loc="upper left")
    ax_hist.bar(centres, r.counts, width, edgecolor="black")
    ax_hist.set(xlabel="confidence (top probability)", ylabel="faces")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
