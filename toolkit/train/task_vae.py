"""Training task for the variational autoencoder.

Loss: binary cross-entropy of the ``reconstruction`` output against the input (a per-pixel mean) plus the KL
term that the model's ``Sampling`` layer adds during training, already divided by the pixel count (builder
docstring, ``toolkit.models.vae``). So with ``beta = 1`` (after the KL warm-up) the training loss is the
one-sample negative ELBO divided by the pixels. ``val_loss`` is NOT: at inference the Sampling layer returns
z_mean and adds no KL, so ``val_loss`` is the reconstruction BCE at z = z_mean (per pixel) -- the checkpoint is
chosen on reconstruction; ``toolkit.eval.vae`` reports the full negative ELBO.

KL warm-up (``kl_warmup_epochs``) ramps the KL weight from 0 over the first epochs: without it the 7k-image
MNIST run collapsed to one or two active latent dimensions (KL ~3-7 nats, reconstructions worse than PCA with
the same 8 numbers); with a 3-epoch warm-up all 8 dimensions stayed active.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from toolkit.config import Limits, check_ranges
from toolkit.data.spec import DataSpec
from toolkit.train.config import TrainConfig
from toolkit.train.task import Datasets
from toolkit.train.task_classifier import Affine, adam_cosine, labelled_image_datasets


@dataclass(frozen=True)
class Options:
    max_shift: float = 0.0  # augmentation: largest shift in pixels, per axis (0 = none)
    max_rotation: float = 0.0  # augmentation: largest rotation in degrees
    min_lr_fraction: float = 0.0  # cosine decay ends at this fraction of the peak learning rate
    kl_warmup_epochs: float = 5.0  # KL weight ramps linearly from 0 to beta over these epochs (0 = off)

    LIMITS: ClassVar[Limits] = {  # valid values of the numeric [task] keys (checked on every build)
        "max_shift": (0.0, 64.0),
        "max_rotation": (0.0, 180.0),
        "min_lr_fraction": (0.0, 1.0),
        "kl_warmup_epochs": (0.0, 100_000.0),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "vae task options")


class WarmupWeight(float):
    """The Sampling layer's KL weight during a warm-up: as a float it IS the configured weight (that is what the
    saved model's config records); multiplied by a tensor inside the training graph it also scales by
    ``min(1, (step + 1) / steps)``, read from the optimizer's step counter. KL warm-up keeps the decoder from
    learning to ignore z before the encoder has learned anything (posterior collapse; Bowman et al. 2016)."""

    def __new__(cls, value: float, iterations: Any, steps: int) -> WarmupWeight:
        weight = super().__new__(cls, value)
        weight.iterations, weight.steps = iterations, max(1, int(steps))
        return weight

    def __mul__(self, other: Any) -> Any:
        import keras

        ramp = keras.ops.minimum(1.0, keras.ops.cast(self.iterations + 1, "float32") / float(self.steps))
        return float(self) * ramp * other

    __rmul__ = __mul__

    def __reduce__(self) -> tuple[type, tuple[float]]:
        return (float, (float(self),))  # copies and pickles (e.g. of the saved config) are the plain weight

    def __deepcopy__(self, memo: dict[int, Any]) -> float:
        return float(self)


class VaeTask:
    kind = "vae"
    default_data = "mnist:split=train"
    default_val_data = "mnist:split=val"
    options_type = Options

    def datasets(
        self, train: DataSpec, val: DataSpec | None, config: TrainConfig, options: Options, model_config: Any
    ) -> Datasets:
        """(image, {"reconstruction": image}) batches; the z outputs have no target (the KL is an added loss)."""
        targets = lambda x, _labels: {"reconstruction": x}  # noqa: E731
        datasets = labelled_image_datasets(
            train,
            val,
            config,
            tuple(model_config.input_shape),
            targets,
            Affine(options.max_shift, options.max_rotation, 0.0),
        )
        datasets.describe["loss"] = "mean pixel BCE + KL / pixels (x pixels = one-sample negative ELBO, nats)"
        return datasets

    def compile(self, model: Any, config: TrainConfig, options: Options, steps_per_epoch: int) -> None:
        import keras

        optimizer = adam_cosine(config, steps_per_epoch, options.min_lr_fraction)
        if options.kl_warmup_epochs > 0:
            sampling = model.get_layer("sampling")
            sampling.kl_weight = WarmupWeight(
                float(sampling.kl_weight),
                optimizer.iterations,
                round(options.kl_warmup_epochs * max(1, steps_per_epoch)),
            )
        model.compile(optimizer=optimizer, loss={"reconstruction": keras.losses.BinaryCrossentropy()})


TASK = VaeTask()
