r"""Evaluate a Keras model or a .tflite file on any split of any FER2013 form.

    fer-convert evaluate models/fer_edge_int8.tflite --data ../shared/data/fer2013.npz \
        --split PrivateTest --json report.json --confusion confusion.png --reliability rel.png

Prints accuracy, per-class precision/recall/F1, the expected calibration error (ECE) and
negative log-likelihood of the scores, and where the data carries FER+ votes (fer2013.npz)
the accuracy against the FER+ majority labels; writes a JSON report, a confusion-matrix PNG
and a reliability-diagram PNG where asked.

Several models are evaluated as an ensemble: the mean of their probabilities, each model
averaged as the options say (the teachers ``train --teacher A --teacher B`` distils from are
this ensemble with ``--mirror-average``).

    fer-convert evaluate models/fer_edge.keras runs/other/model.keras \
        --data ../shared/data/fer2013.npz --split PublicTest --mirror-average
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .calibrate import expected_calibration_error, negative_log_likelihood, plot_reliability
from .command import Tool, ToolError
from .data import LABELS, NO_MAJORITY, SIDE, Split, load
from .keras_file import keras_file_problem, load_keras_model
from .options import (
    add_data_option,
    add_reference_option,
    add_view_options,
    output_problem,
    split_option,
    views,
)

if TYPE_CHECKING:
    from .model import TTA


def predict_tflite(model_path: str | Path, images: np.ndarray, threads: int = 1) -> np.ndarray:
    """(N, 7) probabilities from a uint8 TFLite model, run face by face as on the device."""
    from fer_edge.classifier import TFLiteExpressionClassifier

    classifier = TFLiteExpressionClassifier(model_path, threads=threads)
    return np.stack([classifier.probabilities(face) for face in images])


def predict_keras(model_path: str | Path, images: np.ndarray, tta: TTA | None = None,
                  temperature: float = 1.0) -> np.ndarray:
    """(N, 7) probabilities from a Keras model taking raw 0..255 pixels (N, 48, 48) uint8.

    ``tta`` averages each face's scores over its views (mirror image, fixed crops, a centre
    crop, a blur; None: one pass over the whole face) and ``temperature`` divides the logits
    first: the very graph ``quantize`` converts (convert.model.with_test_time_average and
    with_temperature), run in float.
    """
    from .model import ONE_PASS, with_temperature, with_test_time_average

    model = with_temperature(load_keras_model(model_path), temperature)
    graph = with_test_time_average(model, tta or ONE_PASS)
    return graph.predict(images[..., None].astype(np.float32), batch_size=256, verbose=0)


def load_model(model_path: str | Path) -> object:
    """The model a file holds, through LiteRT (.tflite) or Keras; ModelError when it does not load."""
    if Path(model_path).suffix == ".tflite":
        from fer_edge.classifier import TFLiteExpressionClassifier

        return TFLiteExpressionClassifier(model_path)
    return load_keras_model(model_path)


def predict(model_path: str | Path, images: np.ndarray, tta: TTA | None = None,
            temperature: float = 1.0) -> np.ndarray:
    """Dispatch on the file type: .tflite through LiteRT, anything else through Keras."""
    if Path(model_path).suffix == ".tflite":
        return predict_tflite(model_path, images)
    return predict_keras(model_path, images, tta, temperature)


def ferplus_accuracy(split: Split, scores: np.ndarray) -> dict | None:
    """Accuracy, ECE and NLL against the FER+ majority labels; None where the data has no FER+ votes.

    FER+ (Barsoum et al. 2016) relabelled every FER2013 face with 10 crowd votes over
    8 emotions, unknown and not-a-face. The majority is Barsoum et al.'s (convert.data.
    ferplus_majority: an emotion with more than half the votes, single votes dropped); faces
    whose majority is contempt, unknown (no majority included) or not-a-face have no FER2013
    class and are excluded: ``faces`` counts the faces scored, ``excluded`` the rest.
    """
    if split.ferplus_majority is None:
        return None
    kept = split.ferplus_majority != NO_MAJORITY
    if not kept.any():
        return {"faces": 0, "excluded": int((~kept).sum()), "accuracy": 0.0}
    majority, kept_scores = split.ferplus_majority[kept], scores[kept]
    return {"faces": int(kept.sum()), "excluded": int((~kept).sum()),
            "accuracy": round(float(np.mean(kept_scores.argmax(1) == majority)), 4),
            "ece": round(expected_calibration_error(kept_scores, majority), 4),
            "nll": round(negative_log_likelihood(kept_scores, majority), 4)}


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
    lines.append(f"calibration: ECE {100 * result['ece']:.2f}% (15 bins), NLL {result['nll']:.4f}")
    if result.get("ferplus"):
        fp = result["ferplus"]
        lines.append(f"FER+ majority labels: accuracy {100 * fp['accuracy']:.2f}% over {fp['faces']} "
                     f"faces ({fp['excluded']} without a 7-class majority left out)"
                     + (f", ECE {100 * fp['ece']:.2f}%, NLL {fp['nll']:.4f}" if "ece" in fp else ""))
    return "\n".join(lines)


TFLITE_IDENTIFIER = b"TFL3"  # the file identifier of the TFLite flatbuffer schema, bytes 4..8
EVALUATES = "pass an int8 .tflite file made by fer_convert.quantize or a .keras model"


def has_tflite_identifier(path: Path) -> bool:
    """Whether the file carries the TFLite flatbuffer identifier (a quick check before loading it)."""
    with path.open("rb") as handle:
        return handle.read(8)[4:] == TFLITE_IDENTIFIER


def test_time_views(args: argparse.Namespace) -> TTA | None:
    """The views the options ask for (None for .tflite files); ToolError naming what is wrong."""
    for model in args.model:
        if Path(model).suffix != ".tflite":
            if problem := keras_file_problem(model):
                raise ToolError(problem)
        elif not Path(model).is_file():
            raise ToolError(f"model {model} not found; {EVALUATES}")
        elif not has_tflite_identifier(Path(model)):
            raise ToolError(f"{model} is not a TFLite model (no TFL3 identifier at byte 4); {EVALUATES}")
    keras_options = (args.tta_crops != 1 or args.temperature != 1 or args.centre_crop != SIDE
                     or args.mirror_average or args.blur != 0)
    tflite = [Path(model).suffix == ".tflite" for model in args.model]
    if all(tflite):
        if keras_options:
            raise ToolError("--mirror-average, --tta-crops, --centre-crop, --blur and --temperature apply to "
                            "Keras models; a .tflite file carries its own views and temperature (set "
                            "them with fer-convert quantize)")
        return None
    if any(tflite) and keras_options:
        raise ToolError("--mirror-average, --tta-crops, --centre-crop, --blur and --temperature would apply "
                        "to the Keras models of this ensemble only; evaluate .tflite and .keras "
                        "files separately")
    return views(args)  # imports Keras, which a .tflite evaluation does without


def title(models: list[str]) -> str:
    """A plot title for one model or an ensemble: the file names joined with " + "."""
    return " + ".join(Path(model).name for model in models)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """evaluate's options."""
    p.add_argument("model", nargs="+",
                   help="a .keras model or a .tflite file; several: the mean of their scores")
    add_data_option(p)
    p.add_argument("--split", default="PrivateTest", type=split_option)
    p.add_argument("--json", type=Path, help="write the report here")
    p.add_argument("--confusion", type=Path, help="write the confusion-matrix PNG here")
    p.add_argument("--reliability", type=Path, help="write the reliability-diagram PNG here")
    add_reference_option(p, "the accuracy, the per-class table, calibration and the plots")
    add_view_options(p, quantizing=False)


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table, write the JSON and PNG where asked."""
    tta = test_time_views(args)
    outputs = [(args.json, ".json"), (args.confusion, ".png"), (args.reliability, ".png")]
    for path, suffix in outputs:
        if path and (problem := output_problem(path, args.model, suffix)):
            raise ToolError(problem)
    if len(args.model) > 1:  # an ensemble: every member loads before the first is scored
        for model in args.model:
            load_model(model)  # ModelError: a file that exists but does not load
    split = load(args.data, args.split).scored_by(args.labels)
    scores = np.mean([predict(model, split.images, tta, args.temperature) for model in args.model], axis=0)
    name = " + ".join(args.model) + (f" {tta.describe()}" if tta and tta.describe() else "")
    if args.temperature != 1:
        name += f" (T = {args.temperature:g})"
    predicted = scores.argmax(axis=1)
    result = {"model": name, "split": split.name, **report(split.labels, predicted),
              "ece": round(expected_calibration_error(scores, split.labels), 4),
              "nll": round(negative_log_likelihood(scores, split.labels), 4),
              "ferplus": ferplus_accuracy(split, scores)}
    print(format_report(result))
    for path, _ in outputs:
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.confusion:
        plot_confusion(result["confusion"], args.confusion, f"{title(args.model)}, {split.name}")
    if args.reliability:
        plot_reliability(scores, split.labels, args.reliability, f"{title(args.model)}, {split.name}")
    return 0


TOOL = Tool("evaluate", "score a .keras or .tflite model (or an ensemble) on a FER2013 split", __doc__,
            add_arguments, run)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m fer_convert.evaluate``."""
    return TOOL.main(argv)


if __name__ == "__main__":
    sys.exit(main())
