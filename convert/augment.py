"""The training input pipeline: random crops, geometric and photometric augmentation, mixup.

Every option off gives the pipeline the shipped models were trained with. ``crop`` and
``mixup`` keep the model's contract: the network still sees 48x48 raw pixels 0..255.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .data import SIDE, Split

if TYPE_CHECKING:
    import tensorflow as tf


def random_crop(face: tf.Tensor, side: int, seed: int) -> tf.Tensor:
    """A random ``side`` x ``side`` crop of one (48, 48, 1) face, resized back to 48x48.

    The resize is ``tf.image.resize``'s half-pixel bilinear one, the same that
    ``convert.model.crop_and_resize`` runs inside the exported graph, so the fixed test-time
    crops look like the training ones.
    """
    import tensorflow as tf

    crop = tf.image.random_crop(face, (side, side, 1), seed=seed)
    return tf.image.resize(crop, (SIDE, SIDE), method="bilinear")


def mix(x: tf.Tensor, y: tf.Tensor, w: tf.Tensor | None, lam: tf.Tensor,
        partner: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """Blend a batch with a permutation of itself: mixup's formula (Zhang et al. 2018).

    x (B, 48, 48, 1) pixels, y (B, 7) targets summing to 1, w (B,) sample weights or None,
    lam a scalar in [0, 1], partner (B,) the row each face is mixed with. Images:
    lam x_i + (1 - lam) x_j. Without weights the targets mix with the same lam. With weights,
    the mixed face gets the weight s = lam w_i + (1 - lam) w_j and the target
    (lam w_i y_i + (1 - lam) w_j y_j) / s: cross-entropy is linear in the target, so its loss
    is exactly lam w_i CE(y_i) + (1 - lam) w_j CE(y_j), and the target still sums to 1.
    """
    import tensorflow as tf

    # the images may be bfloat16 (--bf16) while targets and weights stay float32
    lam_x, lam = tf.cast(lam, x.dtype), tf.cast(lam, y.dtype)
    x = lam_x * x + (1 - lam_x) * tf.gather(x, partner)
    y_other = tf.gather(y, partner)
    if w is None:
        return x, lam * y + (1 - lam) * y_other
    w = tf.cast(w, y.dtype)
    w_self, w_other = lam * w, (1 - lam) * tf.gather(w, partner)
    weight = w_self + w_other
    y = (w_self[:, None] * y + w_other[:, None] * y_other) / tf.maximum(weight, 1e-12)[:, None]
    return x, y, weight


def mixup(x: tf.Tensor, y: tf.Tensor, w: tf.Tensor | None, alpha: float,
          seed: int) -> tuple[tf.Tensor, ...]:
    """Batch-level mixup: one lam ~ Beta(alpha, alpha) per batch, a random partner per face.

    Beta(a, a) is drawn as G1 / (G1 + G2) with G1, G2 ~ Gamma(a, 1); TensorFlow has no Beta
    sampler. Zhang et al. 2018 found alpha 0.1-0.4 helps on ImageNet-sized problems.
    """
    import tensorflow as tf

    g1 = tf.random.gamma((), alpha, seed=seed)
    g2 = tf.random.gamma((), alpha, seed=seed + 1)
    lam = g1 / tf.maximum(g1 + g2, 1e-12)
    partner = tf.random.shuffle(tf.range(tf.shape(x)[0]), seed=seed + 2)
    return mix(x, y, w, lam, partner)


def camera_view(face: tf.Tensor) -> tf.Tensor:
    """One (48, 48, 1) float face as a camera and a detector might deliver it.

    Each with its own chance: JPEG at quality 30-90 (0.3), a lower resolution (a face 16-40 px
    wide scaled back up, 0.3), gamma 0.6-1.65 (always), low light at 25-70% (0.2), sensor noise
    with a standard deviation of 2-10 grey levels (0.3), and one grey patch 8-20 px a side over
    the face (a hand, a cup, glasses' glare; 0.25).
    """
    import tensorflow as tf

    def chance(p: float) -> tf.Tensor:
        return tf.random.uniform(()) < p

    face = tf.cond(chance(0.3), lambda: tf.cast(tf.image.random_jpeg_quality(
        tf.cast(face, tf.uint8), 30, 90), tf.float32), lambda: face)

    def lower_resolution() -> tf.Tensor:
        side = tf.random.uniform((), 16, 41, dtype=tf.int32)
        small = tf.image.resize(face, (side, side), method="area")
        return tf.image.resize(small, (SIDE, SIDE), method="bilinear")

    face = tf.cond(chance(0.3), lower_resolution, lambda: face)
    gamma = tf.exp(tf.random.uniform((), -0.5, 0.5))
    face = 255.0 * tf.pow(tf.clip_by_value(face, 0, 255) / 255.0, gamma)
    face = tf.cond(chance(0.2), lambda: face * tf.random.uniform((), 0.25, 0.7), lambda: face)
    face = tf.cond(chance(0.3), lambda: face + tf.random.normal(
        tf.shape(face), stddev=tf.random.uniform((), 2.0, 10.0)), lambda: face)

    def occluded() -> tf.Tensor:
        h, w = (tf.random.uniform((), 8, 21, dtype=tf.int32) for _ in range(2))
        top = tf.random.uniform((), 0, SIDE - h + 1, dtype=tf.int32)
        left = tf.random.uniform((), 0, SIDE - w + 1, dtype=tf.int32)
        rows, cols = tf.range(SIDE)[:, None], tf.range(SIDE)[None, :]
        inside = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
        return tf.where(inside[..., None], tf.random.uniform((), 0, 255), face)

    face = tf.cond(chance(0.25), occluded, lambda: face)
    return tf.clip_by_value(face, 0, 255)


def make_dataset(split: Split, y: np.ndarray, batch: int, seed: int, augment: bool,
                 weights: np.ndarray | None = None, crop: int = 0,
                 mixup_alpha: float = 0.0, camera: bool = False) -> tf.data.Dataset:
    """A tf.data pipeline of (pixels float32 0..255, targets[, sample weights]).

    ``weights``: (N,) per-face loss weights. ``augment``: shuffle, then where ``crop`` > 0 a
    random crop of that side resized back to 48, where ``camera`` the camera's faults of
    :func:`camera_view`, the flip, rotation, shift, zoom, brightness and contrast of
    models/README.md, and where ``mixup_alpha`` > 0 mixup.
    """
    import keras
    import tensorflow as tf
    from keras import layers

    x = split.images[..., None].astype(np.float32)
    tensors = (x, y) if weights is None else (x, y, weights)
    ds = tf.data.Dataset.from_tensor_slices(tensors)
    if augment:
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
        if crop:
            ds = ds.map(lambda x, *rest: (random_crop(x, crop, seed + 6), *rest),
                        num_parallel_calls=tf.data.AUTOTUNE)
        if camera:
            ds = ds.map(lambda x, *rest: (camera_view(x), *rest), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch)
    if augment:
        augmenter = keras.Sequential([
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(12 / 360, fill_mode="reflect", seed=seed + 1),
            layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed + 2),
            layers.RandomZoom(0.12, fill_mode="reflect", seed=seed + 3),
            layers.RandomBrightness(0.25, value_range=(0, 255), seed=seed + 4),
            layers.RandomContrast(0.3, value_range=(0, 255), seed=seed + 5),
        ], name="augment")
        ds = ds.map(lambda x, *rest: (augmenter(x, training=True), *rest),
                    num_parallel_calls=tf.data.AUTOTUNE)
        if mixup_alpha > 0:
            ds = ds.map(lambda x, y, *w: mixup(x, y, w[0] if w else None, mixup_alpha, seed + 7),
                        num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
