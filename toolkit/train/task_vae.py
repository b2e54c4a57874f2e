"""Training task for the variational autoencoder.

Loss: binary cross-entropy of the ``reconstruction`` output against the input (a per-pixel mean) plus the KL
term that the model's ``Sampling`` layer adds during training, already divided by the pixel count (builder
docstring, ``toolkit.models.vae``). So with ``beta = 1`` the training loss is the negative ELBO divided by the
pixels: ``val_loss * 784`` is the one-sample negative ELBO in nats per 28x28 image, the figure
``toolkit.eval.vae`` reports (there with several samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toolkit.data.spec import DataSpec
from toolkit.errors import UsageError
from toolkit.eval.classifier import load_labelled_images
from toolkit.train.config import TrainConfig
from toolkit.train.task import Datasets
from toolkit.train.task_classifier import Affine, adam_cosine, image_dataset


@dataclass(frozen=True)
class Options:
    max_shift: float = 1.0  # augmentation: largest shift in pixels, per axis (0 = none)
    max_rotation: float = 0.0  # augmentation: largest rotation in degrees
    min_lr_fraction: float = 0.0  # cosine decay ends at this fraction of the peak learning rate


def _check(options: Options) -> Affine:
    if options.max_shift < 0 or options.max_rotation < 0:
        raise UsageError("task.max_shift and task.max_rotation must be >= 0")
    return Affine(options.max_shift, options.max_rotation, 0.0)


class VaeTask:
    kind = "vae"
    default_data = "mnist:split=train"
    default_val_data = "mnist:split=val"
    options_type = Options

    def datasets(self, train: DataSpec, val: DataSpec | None, config: TrainConfig, options: Options,
                 model_config: Any) -> Datasets:
        """(image, {"reconstruction": image}) batches; the z outputs have no target (the KL is an added loss)."""
        affine = _check(options)
        shape = tuple(model_config.input_shape)
        targets = lambda x, _labels: {"reconstruction": x}  # noqa: E731
        train_data = load_labelled_images(train, shape, "train")
        train_ds = image_dataset(train_data.images, targets, config, train_data.labels, True, affine)
        val_data = load_labelled_images(val, shape, "val") if val is not None else None
        val_ds = image_dataset(val_data.images, targets, config, val_data.labels) if val_data else None
        return Datasets(train_ds, val_ds, len(train_data.images), len(val_data.images) if val_data else 0,
                        {"train": train_data.describe, "val": val_data.describe if val_data else None,
                         "augment": vars(affine) if config.augment else None,
                         "loss": "mean pixel BCE + KL / pixels (x pixels = one-sample negative ELBO, nats)"})

    def compile(self, model: Any, config: TrainConfig, options: Options, steps_per_epoch: int) -> None:
        import keras

        _check(options)
        model.compile(optimizer=adam_cosine(config, steps_per_epoch, options.min_lr_fraction),
                      loss={"reconstruction": keras.losses.BinaryCrossentropy()})


TASK = VaeTask()
