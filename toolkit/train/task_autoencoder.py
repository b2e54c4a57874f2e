"""Training task for the convolutional autoencoder (anomaly detection by reconstruction error).

The shipped set-up trains on the normal digits only (``mnist:split=train,exclude=9``, validation
``mnist:split=val,exclude=9``) and scores ``mnist:split=test,anomaly=9`` (toolkit.eval.autoencoder). The target of
each image is the image itself -- after augmentation, so input and target are warped together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from toolkit.config import Limits, check_ranges
from toolkit.data.spec import DataSpec
from toolkit.errors import UsageError
from toolkit.train.config import TrainConfig
from toolkit.train.task import Datasets
from toolkit.train.task_classifier import Affine, adam_cosine, labelled_image_datasets


@dataclass(frozen=True)
class Options:
    loss: Literal["bce", "mse"] = "bce"  # pixel loss: binary cross-entropy (sharper on [0, 1] digits) or MSE
    max_shift: float = (
        1.0  # augmentation: largest shift in pixels, per axis (small: keep the normal class tight)
    )
    max_rotation: float = 5.0  # augmentation: largest rotation in degrees
    max_zoom: float = 0.0  # augmentation: scale drawn from [1 - max_zoom, 1 + max_zoom]
    min_lr_fraction: float = 0.0  # cosine decay ends at this fraction of the peak learning rate

    LIMITS: ClassVar[Limits] = {  # valid values of the numeric [task] keys (checked on every build)
        "max_shift": (0.0, 64.0),
        "max_rotation": (0.0, 180.0),
        "max_zoom": (0.0, 0.99),
        "min_lr_fraction": (0.0, 1.0),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "autoencoder task options")


def _check(options: Options) -> Affine:
    if options.loss not in ("bce", "mse"):
        raise UsageError(f"task.loss must be 'bce' or 'mse', got '{options.loss}'")
    return Affine(options.max_shift, options.max_rotation, options.max_zoom)


class AutoencoderTask:
    kind = "autoencoder"
    default_data = "mnist:split=train,exclude=9"
    default_val_data = "mnist:split=val,exclude=9"
    options_type = Options

    def datasets(
        self, train: DataSpec, val: DataSpec | None, config: TrainConfig, options: Options, model_config: Any
    ) -> Datasets:
        """(image, {"reconstruction": image}) batches; images shaped to ``model_config.input_shape``."""
        targets = lambda x, _labels: {"reconstruction": x}  # noqa: E731
        return labelled_image_datasets(
            train, val, config, tuple(model_config.input_shape), targets, _check(options)
        )

    def compile(self, model: Any, config: TrainConfig, options: Options, steps_per_epoch: int) -> None:
        import keras

        _check(options)
        loss = keras.losses.BinaryCrossentropy() if options.loss == "bce" else keras.losses.MeanSquaredError()
        model.compile(
            optimizer=adam_cosine(config, steps_per_epoch, options.min_lr_fraction),
            loss={"reconstruction": loss},
            metrics={"reconstruction": [keras.metrics.MeanSquaredError(name="mse")]},
        )


TASK = AutoencoderTask()
