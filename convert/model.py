"""The expression CNN: a compact VGG-style network sized for int8 inference on edge CPUs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import layers

from .data import LABELS, SIDE

# Pixels (B, 48, 48, 1): a numpy array, or a tensor where the function runs inside a graph
Faces = Any

# Channels per stage; each stage is two 3x3 conv-BN-ReLU layers and a 2x2 max-pool. Doubling
# the width at each halving keeps the cost of the first three stages about equal; the last
# stage stops at 192 because wider ones overfit 28k faces. models/README.md has the measurements.
DEFAULT_WIDTHS = (32, 64, 128, 192)
# Largest test-time blur (sigma, px) whose weight a 3x3 Gaussian holds to within 1%
MAX_BLUR = 0.6


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


def crop_windows(crops: int, side: int) -> list[tuple[int, int, int]]:
    """The first ``crops`` test-time windows as (top, left, side) in pixels of the 48x48 face.

    In order: the whole face, then ``side`` x ``side`` crops at the centre, top-left,
    top-right, bottom-left and bottom-right (the 10-crop evaluation of Krizhevsky et al. 2012
    with the whole face in front). One window is the whole face alone: the network as trained
    without ``--crop``.
    """
    if not 1 <= crops <= 6:
        raise ValueError(f"crops must be 1..6 (whole face, centre, 4 corners), got {crops}")
    if crops > 1 and not 1 <= side < SIDE:
        raise ValueError(f"the crop side must be 1..{SIDE - 1} px, got {side}")
    far, mid = SIDE - side, (SIDE - side) // 2
    return [(0, 0, SIDE), (mid, mid, side), (0, 0, side), (0, far, side), (far, 0, side),
            (far, far, side)][:crops]


def crop_and_resize(faces: Faces, window: tuple[int, int, int]) -> Faces:
    """Cut ``window`` out of (B, 48, 48, 1) faces and resize it back to 48x48 (bilinear).

    ``keras.ops.image.resize`` is ``tf.image.resize`` on the TensorFlow backend, the same
    half-pixel bilinear resize ``convert.augment.random_crop`` trains with, and an int8
    RESIZE_BILINEAR builtin in TFLite.
    """
    top, left, side = window
    if side == SIDE:
        return faces
    crop = faces[:, top:top + side, left:left + side, :]
    return keras.ops.image.resize(crop, (SIDE, SIDE), interpolation="bilinear")


@dataclass(frozen=True)
class TTA:
    """Test-time augmentation: the views of each face whose scores the exported graph averages.

    ``centre_crop``: every view is cut from the face's centre ``centre_crop`` x ``centre_crop``
    px (an odd margin leaves its extra pixel at the bottom and right: 47 px is rows and columns
    0..46), resized back to 48x48 (48: the whole face): the evaluation-time centre crop of
    ImageNet practice (224 of 256 px, Krizhevsky et al. 2012). Here its resample matters more
    than its framing: the augmentation resampled every training face, and a resampled test face
    looks more like them (models/README.md, "Centre crop").
    ``crops``, ``side``: the windows of that framed face (``crop_windows``); ``mirror``: each
    window also mirrored. ``blur``: the sigma (px) of a Gaussian blur every view gets, folded
    into the first convolution (``with_input_blur``: no extra op). Raises ValueError for sizes
    that do not fit the 48x48 face.
    """

    crops: int = 1
    side: int = 44
    mirror: bool = True
    centre_crop: int = SIDE
    blur: float = 0.0

    def __post_init__(self) -> None:
        crop_windows(self.crops, self.side)
        if not 1 <= self.centre_crop <= SIDE:
            raise ValueError(f"the centre crop must be 1..{SIDE} px, got {self.centre_crop}")
        if not 0 <= self.blur <= MAX_BLUR:
            raise ValueError(f"the blur must be 0..{MAX_BLUR} px (sigma), got {self.blur}")

    @property
    def views(self) -> int:
        """Passes of the network per face."""
        return self.crops * (2 if self.mirror else 1)

    def describe(self) -> str:
        """What a report says of these views, e.g. "(mirror-averaged) (centre 46 px)"."""
        words = " (mirror-averaged)" * self.mirror
        words += f" ({self.crops} crops of {self.side} px)" * (self.crops > 1)
        words += f" (centre {self.centre_crop} px)" * (self.centre_crop < SIDE)
        words += f" (blur {self.blur:g} px)" * (self.blur > 0)
        return words.strip()


ONE_PASS = TTA(mirror=False)  # the plain network: the whole face, once


def tta_views(faces: Faces, tta: TTA) -> Iterator[Faces]:
    """The (B, 48, 48, 1) views a test-time average runs: each window, then its mirror image.

    A generator, so that scoring many faces holds one view at a time.
    """
    mid = (SIDE - tta.centre_crop) // 2
    framed = crop_and_resize(faces, (mid, mid, tta.centre_crop))
    for window in crop_windows(tta.crops, tta.side):
        view = crop_and_resize(framed, window)
        yield view
        if tta.mirror:
            yield keras.ops.flip(view, axis=2)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """(3, 3) Gaussian weights of standard deviation ``sigma`` px, summing to 1.

    3x3 holds all but 0.1% of the weight of a sigma of 0.5 px (1.0% at 0.6 px, ``MAX_BLUR``).
    """
    side = np.exp(-np.arange(-1, 2) ** 2 / (2 * sigma**2))
    kernel = np.outer(side, side)
    return kernel / kernel.sum()


def with_input_blur(model: keras.Model, sigma: float) -> keras.Model:
    """``model`` with a Gaussian blur of its input folded into its first convolution.

    A blur and a convolution compose into one convolution whose kernel is the two kernels
    convolved: the first 3x3 conv becomes 5x5 (a single-channel input, so a few more
    multiply-adds per pixel, and no extra op in the int8 graph). The network trained on faces
    its augmentation had resampled; a test face blurred this way looks more like them (see
    models/README.md). Zero padding at the border, as the conv itself does. Raises ValueError
    for a model whose first conv is not 3x3 over one channel.
    """
    if sigma == 0:
        return model
    first = next(layer for layer in model.layers if isinstance(layer, layers.Conv2D))
    kernel, *rest = first.get_weights()
    if kernel.shape[:3] != (3, 3, 1):
        raise ValueError(f"cannot fold a blur into {first.name}: a 3x3 conv over one channel expected, "
                         f"got kernel {kernel.shape}")
    g = gaussian_kernel(sigma)
    folded = np.zeros((5, 5, 1, kernel.shape[3]), np.float32)
    for u, v in np.ndindex(3, 3):  # the full 2-D convolution of each 3x3 kernel with g
        folded[u:u + 3, v:v + 3] += g[u, v] * kernel

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if layer.name == first.name:
            config["kernel_size"] = folded.shape[:2]
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    for source, target in zip(model.layers, copy.layers, strict=True):
        target.set_weights([folded, *rest] if source.name == first.name
                           else source.get_weights())
    return copy


def with_test_time_average(model: keras.Model, tta: TTA) -> keras.Model:
    """The model's scores averaged over the views of ``tta``, in one graph.

    V = ``tta.views`` views of a (B, 48, 48, 1) batch run as one batch of V x B inside the
    graph, and the (V x B, 7) scores are averaged back to (B, 7). The exported model keeps the
    [1, 48, 48, 1] input, stores the weights once and costs V passes per face. Faces are close
    to symmetric, so a classifier's errors on a face and on its mirror are partly independent:
    the mirror alone raised PrivateTest accuracy by 2.3 points (models/README.md).
    """
    model = with_input_blur(model, tta.blur)
    if tta.views == 1 and tta.centre_crop == SIDE:
        return model
    inputs = keras.Input((SIDE, SIDE, 1), name="pixels")
    batch = layers.Lambda(
        lambda t: keras.ops.concatenate(list(tta_views(t, tta)), axis=0),
        name="test_time_views")(inputs)
    scores = layers.Lambda(
        lambda t: keras.ops.mean(keras.ops.reshape(t, (tta.views, -1, len(LABELS))), axis=0),
        name="test_time_average")(model(batch))
    return keras.Model(inputs, scores, name=f"{model.name}_tta{tta.views}")


def with_mirror_average(model: keras.Model) -> keras.Model:
    """The model's scores averaged over the face and its mirror image, in one graph."""
    return with_test_time_average(model, TTA())


def with_temperature(model: keras.Model, temperature: float) -> keras.Model:
    """``model`` with its logits divided by ``temperature`` before the softmax (a copy if T != 1).

    Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks"):
    softmax(z / T) keeps every argmax and, with T fitted on held-out faces, makes the scores
    mean what they say. The division is folded into the last dense layer (z / T = x (W / T)
    + b / T), so the int8 graph gains no op and the device needs to know nothing about it.
    """
    if temperature <= 0:
        raise ValueError(f"the temperature must be positive, got {temperature}")
    if temperature == 1:
        return model
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    dense = logits_layer(copy)
    dense.set_weights([w / temperature for w in dense.get_weights()])
    return copy


def logits_layer(model: keras.Model) -> layers.Dense:
    """The dense layer that feeds the softmax (``build_model`` names it "logits")."""
    try:
        return model.get_layer("logits")
    except ValueError:
        raise ValueError(f"{model.name} has no layer named 'logits' before its softmax; "
                         "temperatures apply to models built by convert.model.build_model") from None


def view_logits(model: keras.Model, images: np.ndarray, tta: TTA = TTA(),  # noqa: B008 - frozen
                batch_size: int = 256) -> np.ndarray:
    """(V, N, 7) float32 logits of each test-time view of (N, 48, 48) uint8 faces."""
    model = with_input_blur(model, tta.blur)
    logits = keras.Model(model.inputs, logits_layer(model).output)
    x = images[..., None].astype(np.float32)
    return np.stack([logits.predict(keras.ops.convert_to_numpy(v), batch_size=batch_size, verbose=0)
                     for v in tta_views(x, tta)]).astype(np.float32)
