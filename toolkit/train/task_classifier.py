"""Training task for the image classifier (MNIST by default): data, seeded augmentation, loss.

Data comes from the same loader the evaluator uses (``toolkit.eval.classifier.load_labelled_images``), so
training, evaluation and calibration see identical float32 [0, 1] images. Augmentation is a seeded random affine
warp per image (shift, rotation, zoom; training split only, only with ``TrainConfig.augment``). The loss is
cross-entropy with label smoothing on the ``probs`` output; the optimizer is Adam with a cosine decay.

The tf.data helpers here (:func:`labelled_image_datasets`, :func:`image_dataset`, :func:`random_affine`,
:func:`adam_cosine`) are shared by the autoencoder and VAE tasks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from toolkit.config import Limits, check_ranges
from toolkit.data.labelled_images import load_labelled_images
from toolkit.data.spec import DataSpec
from toolkit.errors import UsageError
from toolkit.train.config import TrainConfig
from toolkit.train.task import Datasets


@dataclass(frozen=True)
class Options:
    label_smoothing: float = 0.1  # cross-entropy label smoothing (0 = hard one-hot targets)
    max_shift: float = 2.0  # augmentation: largest shift in pixels, per axis
    max_rotation: float = 12.0  # augmentation: largest rotation in degrees, either way
    max_zoom: float = 0.1  # augmentation: scale drawn from [1 - max_zoom, 1 + max_zoom]
    min_lr_fraction: float = 0.0  # cosine decay ends at this fraction of the peak learning rate

    LIMITS: ClassVar[Limits] = {  # valid values of the numeric [task] keys (checked on every build)
        "label_smoothing": (0.0, 0.99),
        "max_shift": (0.0, 64.0),
        "max_rotation": (0.0, 180.0),
        "max_zoom": (0.0, 0.99),
        "min_lr_fraction": (0.0, 1.0),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "classifier task options")


@dataclass(frozen=True)
class Affine:
    """Ranges of the random affine augmentation (0 everywhere = no augmentation)."""

    max_shift: float = 0.0  # pixels per axis
    max_rotation: float = 0.0  # degrees
    max_zoom: float = 0.0  # relative scale change

    @property
    def active(self) -> bool:
        return self.max_shift > 0 or self.max_rotation > 0 or self.max_zoom > 0


def random_affine(images: Any, seed: Any, affine: Affine) -> Any:
    """Warp a (B, H, W, C) float batch by one random shift/rotation/zoom per image about the image centre.

    ``seed`` is a shape-(2,) int tensor for TensorFlow's stateless random ops, so the same seed gives the same
    warp (deterministic runs). Bilinear sampling, zero (black) fill -- MNIST's background.
    """
    import tensorflow as tf

    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    uniform = lambda s, limit: tf.random.stateless_uniform((batch,), s, -limit, limit)  # noqa: E731
    angle = uniform(seeds[0], affine.max_rotation * math.pi / 180.0)
    scale = 1.0 + uniform(seeds[1], affine.max_zoom)
    tx, ty = uniform(seeds[2], affine.max_shift), uniform(seeds[3], affine.max_shift)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    # ImageProjectiveTransformV3 maps each OUTPUT pixel to the input pixel it samples: the inverse warp.
    transforms = tf.stack(
        [
            cos,
            sin,
            cx - cos * (cx + tx) - sin * (cy + ty),
            -sin,
            cos,
            cy + sin * (cx + tx) - cos * (cy + ty),
            tf.zeros_like(cos),
            tf.zeros_like(cos),
        ],
        axis=1,
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.constant([height, width]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def image_dataset(
    images: np.ndarray,
    make_targets: Callable[[Any], Any],
    config: TrainConfig,
    labels: np.ndarray | None = None,
    training: bool = False,
    affine: Affine = Affine(),
) -> Any:
    """A batched tf.data pipeline of (image, targets) from float32 images (and optional int labels).

    ``make_targets(images, labels)`` builds the target dict from the (augmented) batch. The training pipeline
    shuffles with ``config.seed`` (a new, seeded order each epoch) and, when ``config.augment``, applies
    :func:`random_affine` with a seeded per-batch key; the validation pipeline is neither shuffled nor augmented.
    """
    import tensorflow as tf

    tensors = (images, labels if labels is not None else np.zeros(len(images), np.int64))
    ds = tf.data.Dataset.from_tensor_slices(tensors)
    if training:
        ds = ds.shuffle(len(images), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size)
    if training and config.augment and affine.active:
        keys = tf.data.Dataset.random(seed=config.seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, keys)).map(
            lambda batch, key: (random_affine(batch[0], key, affine), batch[1])
        )
    ds = ds.map(lambda x, y: (x, make_targets(x, y)))
    return ds.prefetch(tf.data.AUTOTUNE)


def labelled_image_datasets(
    train: DataSpec,
    val: DataSpec | None,
    config: TrainConfig,
    shape: tuple[int, ...],
    make_targets: Callable[[Any, Any], Any],
    affine: Affine,
    classes: int | None = None,
) -> Datasets:
    """Training and validation pipelines (:func:`image_dataset`) of the labelled images of two SPECs.

    Images are shaped to ``shape``; the training side is shuffled and augmented with ``affine``. ``classes``: the
    model's number of classes, checked against the training labels (None: labels are not targets). Returns
    :class:`Datasets` whose describe holds the train / val data descriptions and the augmentation used.
    """
    train_data = load_labelled_images(train, shape, "train")
    if classes is not None and int(train_data.labels.max()) >= classes:
        raise UsageError(
            f"data '{train}' has labels up to {int(train_data.labels.max())} but the model has "
            f"{classes} classes (set model.num_classes)"
        )
    train_ds = image_dataset(train_data.images, make_targets, config, train_data.labels, True, affine)
    val_data = load_labelled_images(val, shape, "val") if val is not None else None
    val_ds = image_dataset(val_data.images, make_targets, config, val_data.labels) if val_data else None
    return Datasets(
        train_ds,
        val_ds,
        len(train_data.images),
        len(val_data.images) if val_data else 0,
        {
            "train": train_data.describe,
            "val": val_data.describe if val_data else None,
            "augment": vars(affine) if config.augment else None,
        },
    )


def cosine_schedule(config: TrainConfig, steps_per_epoch: int, min_lr_fraction: float = 0.0) -> Any:
    """``config.learning_rate`` decaying along a cosine to ``min_lr_fraction`` of it over epochs x steps."""
    import keras

    if config.learning_rate <= 0:
        raise UsageError(f"learning_rate must be positive, got {config.learning_rate}")
    if not 0.0 <= min_lr_fraction <= 1.0:
        raise UsageError(f"task.min_lr_fraction must be in [0, 1], got {min_lr_fraction}")
    steps = max(1, config.epochs * max(1, steps_per_epoch))
    return keras.optimizers.schedules.CosineDecay(config.learning_rate, steps, alpha=min_lr_fraction)


def adam_cosine(config: TrainConfig, steps_per_epoch: int, min_lr_fraction: float = 0.0) -> Any:
    """Adam with :func:`cosine_schedule` (the optimizer every MNIST task uses)."""
    import keras

    return keras.optimizers.Adam(cosine_schedule(config, steps_per_epoch, min_lr_fraction))


class ClassifierTask:
    kind = "classifier"
    default_data = "mnist:split=train"
    default_val_data = "mnist:split=val"
    options_type = Options

    def datasets(
        self, train: DataSpec, val: DataSpec | None, config: TrainConfig, options: Options, model_config: Any
    ) -> Datasets:
        """One-hot targets under ``probs``; images shaped to ``model_config.input_shape``."""
        import tensorflow as tf

        classes = int(model_config.num_classes)
        targets = lambda x, y: {"probs": tf.one_hot(y, classes)}  # noqa: E731
        affine = Affine(options.max_shift, options.max_rotation, options.max_zoom)
        return labelled_image_datasets(
            train, val, config, tuple(model_config.input_shape), targets, affine, classes
        )

    def compile(self, model: Any, config: TrainConfig, options: Options, steps_per_epoch: int) -> None:
        import keras

        model.compile(
            optimizer=adam_cosine(config, steps_per_epoch, options.min_lr_fraction),
            loss={"probs": keras.losses.CategoricalCrossentropy(label_smoothing=options.label_smoothing)},
            metrics={"probs": [keras.metrics.CategoricalAccuracy(name="accuracy")]},
        )


TASK = ClassifierTask()
