"""The expression CNN: a compact VGG-style network sized for int8 inference on edge CPUs."""

from __future__ import annotations

import keras
from keras import layers

from .data import LABELS, SIDE

# Channels per stage; each stage is two 3x3 conv-BN-ReLU layers and a 2x2 max-pool. Doubling
# the width at each halving keeps the cost of the first three stages about equal; the last
# stage stops at 192 because wider ones overfit 28k faces. models/README.md has the measurements.
DEFAULT_WIDTHS = (32, 64, 128, 192)


def build_model(widths: tuple[int, ...] = DEFAULT_WIDTHS, dropout: float = 0.4,
                stem: int = 0) -> keras.Model:
    """Build the classifier: raw 0..255 pixels (48, 48, 1) in, 7 softmax scores out.

    ``stem`` > 0 puts a stride-2 3x3 conv of that many channels before the first stage, so
    the stages start at 24x24. On LiteRT's int8 kernels a conv at 48x48 costs by the pixel
    more than by the multiply-add: the stem takes a quarter off the fast model's time.

    Every op (conv, batch-norm folded into it, ReLU, max-pool, mean, dense, softmax) has an
    int8 TFLite builtin, so full-integer quantization leaves no float op behind.
    """
    inputs = keras.Input((SIDE, SIDE, 1), name="pixels")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize")(inputs)
    if stem:
        x = layers.Conv2D(stem, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
        x = layers.BatchNormalization(name="stem_bn")(x)
        x = layers.ReLU(name="stem_relu")(x)
    for stage, width in enumerate(widths):
        for conv in range(2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False,
                              name=f"stage{stage}_conv{conv}")(x)
            x = layers.BatchNormalization(name=f"stage{stage}_bn{conv}")(x)
            x = layers.ReLU(name=f"stage{stage}_relu{conv}")(x)
        x = layers.MaxPooling2D(name=f"stage{stage}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(len(LABELS), name="logits")(x)
    # float32 softmax even under a mixed-precision policy, for a stable loss
    outputs = layers.Softmax(dtype="float32", name="scores")(x)
    return keras.Model(inputs, outputs, name="fer_edge_cnn")


def with_mirror_average(model: keras.Model) -> keras.Model:
    """The model's scores averaged over the face and its mirror image, in one graph.

    Faces are close to symmetric, so a classifier's errors on a face and on its mirror are
    partly independent: averaging the two raised PrivateTest accuracy by 2.3 points for a
    0.55 ms per-face cost (models/README.md). The pair runs as a batch of two inside the
    graph, so the exported model keeps the [1, 48, 48, 1] input and its weights are stored once.
    """
    inputs = keras.Input((SIDE, SIDE, 1), name="pixels")
    pair = layers.Lambda(lambda t: keras.ops.concatenate([t, keras.ops.flip(t, axis=2)], axis=0),
                         name="with_mirror")(inputs)
    scores = layers.Lambda(lambda t: keras.ops.mean(t, axis=0, keepdims=True),
                           name="mirror_average")(model(pair))
    return keras.Model(inputs, scores, name=f"{model.name}_mirror_average")
