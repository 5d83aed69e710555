"""Evaluate a Keras model or a .tflite file on any split of any FER2013 form.

    python -m fer_convert.evaluate models/fer_edge_int8.tflite --data ../shared/data/fer2013.npz \
        --split PrivateTest --json report.json --confusion confusion.png

Prints accuracy and per-class precision/recall/F1; writes a JSON report and a
confusion-matrix PNG where asked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .data import LABELS, DataError, load  # noqa: E402


def predict_tflite(model_path: str | Path, images: np.ndarray, threads: int = 1) -> np.ndarray:
    """(N, 7) probabilities from a uint8 TFLite model, run face by face as on the device."""
    from fer_edge.classifier import TFLiteExpressionClassifier

    classifier = TFLiteExpressionClassifier(model_path, threads=threads)
    return np.stack([classifier.probabilities(face) for face in images])


def predict_keras(model_path: str | Path, images: np.ndarray, mirror_average: bool = False) -> np.ndarray:
    """(N, 7) probabilities from a Keras model taking raw 0..255 pixels.

    ``mirror_average`` averages each face's scores with its mirror image's, as the shipped
    int8 model does inside its graph (convert.model.with_mirror_average).
    """
    import keras

    model = keras.models.load_model(model_path)
    x = images[..., None].astype(np.float32)
    scores = model.predict(x, batch_size=256, verbose=0)
    if mirror_average:
        scores = (scores + model.predict(x[:, :, ::-1], batch_size=256, verbose=0)) / 2
    return scores


def predict(model_path: str | Path, images: np.ndarray, mirror_average: bool = False) -> np.ndarray:
    """Dispatch on the file type: .tflite through LiteRT, anything else through Keras."""
    if Path(model_path).suffix == ".tflite":
        return predict_tflite(model_path, images)
    return predict_keras(model_path, images, mirror_average)


def report(labels: np.ndarray, predicted: np.ndarray) -> dict:
    """Accuracy, confusion matrix and per-class precision/recall/F1."""
    k = len(LABELS)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = {}
    for i, name in enumerate(LABELS):
        tp = confusion[i, i]
        precision = tp / max(confusion[:, i].sum(), 1)
        recall = tp / max(confusion[i].sum(), 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        per_class[name] = {"precision": round(float(precision), 4), "recall": round(float(recall), 4),
                           "f1": round(float(f1), 4), "support": int(confusion[i].sum())}
    return {
        "faces": int(len(labels)),
        "accuracy": round(float(np.mean(labels == predicted)), 4),
        "macro_f1": round(float(np.mean([c["f1"] for c in per_class.values()])), 4),
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def plot_confusion(confusion: list[list[int]], out: Path, title: str) -> None:
    """Row-normalised confusion matrix as a PNG, counts and percentages in each cell."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.array(confusion)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), share in np.ndenumerate(shares):
        ax.text(j, i, f"{100 * share:.0f}%\n{counts[i, j]}", ha="center", va="center", fontsize=8,
                color="white" if share > 0.5 else "black")
    ax.set(xticks=range(len(LABELS)), yticks=range(len(LABELS)), xticklabels=LABELS,
           yticklabels=LABELS, xlabel="predicted", ylabel="true", title=title)
    plt.setp(ax.get_xticklabels(), rotation=35, ha="right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def format_report(result: dict) -> str:
    """Human-readable table of a report."""
    lines = [f"{result['model']} on {result['split']}: accuracy {100 * result['accuracy']:.2f}% "
             f"over {result['faces']} faces, macro F1 {result['macro_f1']:.3f}",
             f"{'class':<10}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for name, c in result["per_class"].items():
        lines.append(f"{name:<10}{c['precision']:>10.3f}{c['recall']:>10.3f}{c['f1']:>10.3f}"
                     f"{c['support']:>10}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point: evaluate, print the table, write the JSON and PNG where asked."""
    p = argparse.ArgumentParser(prog="python -m fer_convert.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a .keras model or a .tflite file")
    p.add_argument("--data", required=True, help="fer2013.npz, fer2013.csv or an image-folder root")
    p.add_argument("--split", default="PrivateTest")
    p.add_argument("--json", type=Path, help="write the report here")
    p.add_argument("--confusion", type=Path, help="write the confusion-matrix PNG here")
    p.add_argument("--mirror-average", action="store_true",
                   help="Keras models: average each face with its mirror image (as the int8 model does)")
    args = p.parse_args(argv)
    try:
        split = load(args.data, args.split)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not Path(args.model).is_file():
        print(f"error: model {args.model} not found", file=sys.stderr)
        return 2
    name = f"{args.model} (mirror-averaged)" if args.mirror_average else str(args.model)
    scores = predict(args.model, split.images, args.mirror_average)
    result = {"model": name, "split": split.name, **report(split.labels, scores.argmax(axis=1))}
    print(format_report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.confusion:
        plot_confusion(result["confusion"], args.confusion, f"{Path(args.model).name}, {split.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
