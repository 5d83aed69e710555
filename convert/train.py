r"""Train the expression CNN on FER2013; resumable, with model selection on PublicTest only.

    fer-convert train --data ../shared/data/fer2013.npz --out runs/main
    fer-convert train --data ../shared/data/fer2013.npz --out runs/main --resume
    fer-convert train --data ../shared/data/fer2013.npz --out runs/stem --stem 16 \
        --widths 32 64 128 --teacher models/fer_edge.keras        # distil the fast network
    fer-convert train --data ../shared/data/fer2013.npz --out runs/recipe \
        --class-weights none --mixup 0.2 --ema 0.999 --crop 44    # the recipe levers

The levers default to the shipped models' recipe: square-root class weights, no mixup, no
weight averaging, no crops, one teacher at most.

A run folder holds ``backup/`` (the state to resume from, written every epoch),
``best.keras`` (highest PublicTest accuracy so far), ``history.csv``, and once the run ends
``model.keras`` (the best weights in float32, ready for ``fer_convert.quantize``),
``training_curve.png`` and ``summary.json``. With ``--ema`` the PublicTest figures, the
selection and ``model.keras`` are those of the averaged weights; ``backup/`` holds both the
trained weights and their average (the optimizer's state), so ``--resume`` continues both.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from fer_edge.errors import ModelError

from .augment import make_dataset
from .command import Tool, ToolError
from .data import SIDE, load
from .history import best_so_far, plot_history
from .keras_file import load_keras_model
from .options import add_data_option, number, output_problem
from .targets import class_weights, selection_split, targets
from .teachers import distilled, teacher_probabilities

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)


def check_recipe(args: argparse.Namespace) -> None:
    """Refuse what argparse's ranges (convert.options.number) cannot say, before any work is done."""
    if not args.teacher and (args.teacher_weight != TEACHER_WEIGHT or args.teacher_centre_crop != SIDE):
        raise TrainError("--teacher-weight and --teacher-centre-crop shape the targets of --teacher; "
                         "without a --teacher MODEL they have no effect: add one or leave them out")
    if args.resume and args.init:
        raise TrainError("--init starts a new run from a model's weights and --resume continues the run "
                         "in --out from its own; pass one of them")
    if args.original_share and args.labels != "ferplus":
        raise TrainError("--original-share mixes FER2013's labels into FER+'s votes; add --labels ferplus")
    if args.crop and not SIDE // 2 <= args.crop < SIDE:
        raise TrainError(f"--crop must be {SIDE // 2}..{SIDE - 1} px, got {args.crop} (0 turns it off)")


def compiled_model(args: argparse.Namespace, train_faces: int) -> keras.Model:
    """The run's network, compiled with its AdamW, warm-up + cosine schedule and loss."""
    import keras

    from .model import DEFAULT_WIDTHS, build_model

    per_epoch = -(-train_faces // args.batch_size)
    steps = per_epoch * args.epochs
    warmup = min(steps // 10, per_epoch * 3)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, steps - warmup, alpha=0.01, warmup_target=args.lr, warmup_steps=warmup)
    model = build_model(widths=tuple(args.widths or DEFAULT_WIDTHS), stem=args.stem)
    # --ema: Keras keeps the average in the optimizer (Polyak averaging of the trainable
    # weights; batch-norm statistics stay those of the trained weights), so backup/ saves it
    # and --resume restores it with the optimizer's other state.
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=args.weight_decay,
                                         use_ema=args.ema > 0, ema_momentum=args.ema),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing),
        metrics=["accuracy"],
    )
    return model


TEACHER_WEIGHT = 0.7  # --teacher-weight's default: the teacher's share of the targets


class TrainError(ToolError):
    """The run cannot start as asked: a lever out of range, or an --out that cannot hold it."""


def initial_weights(path: str, network: keras.Model) -> list[np.ndarray]:
    """--init's weights, checked against ``network``, the one --widths and --stem build.

    Raises ModelError (fer_edge.errors) for a file that is not a Keras model or another network.
    """
    weights = load_keras_model(path).get_weights()
    try:
        network.set_weights(weights)
    except ValueError as exc:
        raise ModelError(f"--init {path} is another network than --widths and --stem build ({exc}); "
                         "pass the --widths and --stem it was trained with") from None
    return weights


def train(args: argparse.Namespace) -> dict:
    """Run (or resume) one training run and return its summary."""
    import keras
    import tensorflow as tf

    from .model import DEFAULT_WIDTHS, build_model

    args.widths = list(args.widths or DEFAULT_WIDTHS)  # recorded in summary.json
    check_recipe(args)
    # before any folder, data or teacher: a fine-tune of the wrong network fails in seconds
    init_weights = (initial_weights(args.init, build_model(widths=tuple(args.widths), stem=args.stem))
                    if args.init else [])
    for teacher in args.teacher or []:
        load_keras_model(teacher)  # a file Keras cannot read is named now, not after the data loads
    out = Path(args.out)
    backup = out / "backup"
    if backup.exists() and not args.resume:
        raise TrainError(f"{out} holds a run already; pass --resume to continue it or --out a new folder")
    if args.resume and not backup.is_dir():
        raise TrainError(f"{out} holds no run to resume (no {backup}); check --out, or leave out --resume "
                         "to start a new run there")
    inputs = [*(args.teacher or []), *([args.init] if args.init else [])]
    if problem := output_problem(out / "model.keras", inputs):
        raise TrainError(problem)
    if args.threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        except RuntimeError:  # TensorFlow already ran in this process (train() called in-process)
            log.warning("TensorFlow is already initialised; --threads %d is ignored", args.threads)
    keras.utils.set_random_seed(args.seed)
    if args.bf16:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")

    train_split, val_split = load(args.data, "Training"), load(args.data, "PublicTest")
    if args.limit:
        rng = np.random.default_rng(args.seed)
        train_split = train_split.subset(rng.permutation(len(train_split))[: args.limit])
        val_split = val_split.subset(rng.permutation(len(val_split))[: max(args.limit // 4, 1)])
    if args.extra_data:
        extra = load(args.extra_data, "Training")
        log.info("adding %d faces of %s, %d times each", len(extra), args.extra_data, args.extra_repeat)
        train_split = train_split.joined(extra, args.extra_repeat)
    log.info("training on %d faces, selecting on %d PublicTest faces", len(train_split), len(val_split))
    out.mkdir(parents=True, exist_ok=True)  # once the data has loaded: a refused run leaves no folder

    y = targets(train_split, args.labels, args.original_share)
    # class weights follow the targets' leading class, so FER+ relabelling moves them too
    weights = class_weights(y.argmax(axis=1), args.class_weights)
    if args.teacher:
        teachers = [Path(t) for t in args.teacher]
        scores = teacher_probabilities(teachers, train_split, out / "teacher_scores.npy",
                                       args.teacher_centre_crop)
        y = distilled(y, scores, args.teacher_weight)
    train_ds = make_dataset(train_split, y, args.batch_size, args.seed, augment=True,
                            weights=None if weights is None else weights[y.argmax(axis=1)],
                            crop=args.crop, mixup_alpha=args.mixup, camera=args.camera_augment)
    val_faces, val_y = selection_split(val_split, args.labels)
    log.info("selecting on %d PublicTest faces (%s labels)", len(val_faces),
             "FER+ majority" if args.labels != "fer" else "FER2013")
    val_ds = make_dataset(val_faces, val_y, 256, args.seed, augment=False)

    model = compiled_model(args, len(train_split))
    if init_weights:
        # fine-tuning: start from a trained model's weights (a new run, with its own schedule)
        model.set_weights(init_weights)
    history = out / "history.csv"
    callbacks = [
        # BackupAndRestore must come before SwapEMAWeights: it saves the trained weights in the
        # model and their average in the optimizer, the state training resumes from
        keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False),
        # the average is what validation, the checkpoint and early stopping see
        *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if args.ema else []),
        keras.callbacks.ModelCheckpoint(str(out / "best.keras"), monitor="val_accuracy",
                                        mode="max", save_best_only=True,
                                        initial_value_threshold=best_so_far(history)),
        keras.callbacks.CSVLogger(str(history), append=True),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=args.patience),
    ]
    model.fit(train_ds, validation_data=val_ds, epochs=args.epochs, callbacks=callbacks,
              verbose=2 if args.progress == "epoch" else 1)

    # Ship float32 weights whatever the training precision, so conversion sees a plain model.
    keras.mixed_precision.set_global_policy("float32")
    best = keras.models.load_model(out / "best.keras")
    final = build_model(widths=tuple(args.widths), stem=args.stem)
    final.set_weights(best.get_weights())
    final.save(out / "model.keras")
    plot_history(history, out / "training_curve.png")
    summary = {
        "data": str(args.data), "labels": args.labels, "epochs_run": sum(1 for _ in history.open()) - 1,
        "best_val_accuracy": best_so_far(history), "parameters": final.count_params(),
        "settings": {k: v for k, v in vars(args).items() if k not in {"data", "out", "resume"}},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Command-line options of the training run."""
    add_data_option(p)
    p.add_argument("--out", required=True, help="run folder (checkpoints, history, model)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--init", help="start from this .keras model's weights (fine-tuning)")
    p.add_argument("--epochs", type=number(int, low=1), default=60)
    p.add_argument("--batch-size", type=number(int, low=1), default=128)
    p.add_argument("--lr", type=number(float, low=0, low_open=True), default=2e-3,
                   help="peak learning rate (cosine decay)")
    p.add_argument("--weight-decay", type=number(float, low=0), default=1e-4)
    p.add_argument("--label-smoothing", type=number(float, low=0, high=1, high_open=True),
                   default=0.1)
    p.add_argument("--labels", choices=("fer", "ferplus"), default="fer",
                   help="fer: FER2013 labels; ferplus: FER+ vote shares as soft targets, selected on "
                        "PublicTest's FER+ majority (npz only)")
    p.add_argument("--original-share", type=number(float, low=0, high=1), default=0.0, metavar="S",
                   help="with --labels ferplus: mix this share of the one-hot FER2013 label into "
                        "the FER+ vote shares (0: votes alone)")
    p.add_argument("--extra-data", metavar="NPZ",
                   help="more training faces: an npz of 48x48 faces, labels and usage 0 (e.g. photos "
                        "cropped by the device's own crop path: scripts/research/real_faces.py crops)")
    p.add_argument("--extra-repeat", type=number(int, low=1), default=1, metavar="K",
                   help="how many times each --extra-data face is seen per epoch")
    p.add_argument("--camera-augment", action="store_true",
                   help="also augment for a camera: blur, JPEG, noise, gamma and low light, "
                        "occlusion, scale jitter")
    p.add_argument("--teacher", action="append", metavar="MODEL",
                   help="distil from this trained .keras model's mirror-averaged scores; repeat it "
                        "to distil from the mean of several teachers")
    p.add_argument("--teacher-centre-crop", type=number(int, low=1, high=SIDE), default=SIDE, metavar="PX",
                   help="score the teachers' views from the face's centre PX x PX, as the int8 "
                        "graph of quantize --centre-crop PX does (48: the whole face)")
    p.add_argument("--teacher-weight", type=number(float, low=0, high=1), default=TEACHER_WEIGHT,
                   help="share of the teacher's scores in the targets (the rest: the labels)")
    p.add_argument("--class-weights", choices=("none", "sqrt", "inverse"), default="sqrt",
                   help="per-class loss weights: none, 1/sqrt(count) (default) or 1/count")
    p.add_argument("--no-class-weights", dest="class_weights", action="store_const", const="none",
                   help="the same as --class-weights none")
    p.add_argument("--mixup", type=number(float, low=0), default=0.0, metavar="ALPHA",
                   help="mixup with lambda ~ Beta(ALPHA, ALPHA) per batch (0: off; try 0.2)")
    p.add_argument("--ema", type=number(float, low=0, high=1, high_open=True), default=0.0, metavar="DECAY",
                   help="validate, select and save an exponential moving average of the weights, "
                        "updated every step (0: off; try 0.999)")
    p.add_argument("--crop", type=int, default=0, metavar="PX",
                   help="train on random PX x PX crops resized back to 48x48 (0: off; try 44)")
    p.add_argument("--widths", type=number(int, low=1), nargs="+",
                   help="channels per stage (default: convert.model.DEFAULT_WIDTHS)")
    p.add_argument("--stem", type=number(int, low=0), default=0,
                   help="channels of a stride-2 conv before the first stage (0: none, stages start at 48x48)")
    p.add_argument("--patience", type=number(int, low=1), default=15,
                   help="early stopping on PublicTest accuracy")
    p.add_argument("--seed", type=number(int, low=0, high=2**32 - 1), default=1234)
    p.add_argument("--limit", type=number(int, low=0), default=0,
                   help="use only this many training faces (smoke runs; 0, the default: all)")
    p.add_argument("--threads", type=number(int, low=0), default=0, help="TensorFlow threads (0: all cores)")
    p.add_argument("--bf16", action="store_true", help="mixed bfloat16 (faster on CPUs with AVX512-BF16)")
    p.add_argument("--progress", choices=("epoch", "bar"), default="epoch")


def run(args: argparse.Namespace) -> int:
    """Train, then print the summary as JSON."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    print(json.dumps(train(args), indent=2))
    return 0


TOOL = Tool("train", "train the expression network on FER2013 (resumable)", __doc__, add_arguments, run)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options of the training run, parsed."""
    return TOOL.parser().parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m fer_convert.train``."""
    return TOOL.main(argv)


if __name__ == "__main__":
    sys.exit(main())
