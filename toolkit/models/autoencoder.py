"""Convolutional autoencoder for anomaly detection: anomaly score = reconstruction error.

Input ``image`` (28, 28, 1) float32 in [0, 1]; output ``reconstruction`` (28, 28, 1) sigmoid. The bottleneck
is a small Dense code (``latent_dim`` numbers, 16 by default = 2% of the pixels): enough for the digits it was
trained on, too little to copy an unfamiliar input, so anomalies reconstruct worse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from toolkit.config import Limits, check_ranges
from toolkit.errors import UsageError
from toolkit.models.blocks import check_image_shape, conv_bn, resolve_keras


@dataclass(frozen=True)
class Config:
    input_shape: tuple[int, int, int] = (28, 28, 1)  # (height, width, channels); H and W multiples of 4
    filters: tuple[int, int] = (16, 32)  # channels of the two stride-2 encoder convolutions (mirrored back)
    latent_dim: int = 16  # size of the bottleneck code
    bottleneck_relu: bool = False  # ReLU on the code (False: a linear code, better spread for int8)

    LIMITS: ClassVar[
        Limits
    ] = {  # valid values of numeric keys (config files, --set); build() checks combinations
        "input_shape": (1, 4096),  # each of height, width, channels
        "filters": (1, 4096),
        "latent_dim": (1, 65_536),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "autoencoder model config")


def build(config: Config = Config(), keras: Any = None) -> Any:
    """Build the autoencoder: {"image"} -> {"reconstruction"}; ``keras`` None = Keras 3, or tf_keras."""
    keras = resolve_keras(keras)
    height, width, channels = check_image_shape(config.input_shape, 4, "autoencoder")
    if len(config.filters) != 2 or min(config.filters) < 1 or config.latent_dim < 1:
        raise UsageError(
            f"autoencoder: filters needs 2 positive entries and latent_dim >= 1, got "
            f"{config.filters} and {config.latent_dim}"
        )
    layers = keras.layers
    f1, f2 = config.filters

    image = keras.Input(shape=(height, width, channels), name="image")
    x = conv_bn(keras, image, f1, "enc1", stride=2)
    x = conv_bn(keras, x, f2, "enc2", stride=2)
    x = layers.Flatten(name="enc_flatten")(x)
    code = layers.Dense(
        config.latent_dim, activation="relu" if config.bottleneck_relu else None, name="code"
    )(x)

    x = layers.Dense((height // 4) * (width // 4) * f2, activation="relu", name="dec_dense")(code)
    x = layers.Reshape((height // 4, width // 4, f2), name="dec_reshape")(x)
    x = layers.Conv2DTranspose(f1, 3, strides=2, padding="same", activation="relu", name="dec_up1")(x)
    x = layers.Conv2DTranspose(f1, 3, strides=2, padding="same", activation="relu", name="dec_up2")(x)
    x = layers.Conv2D(channels, 3, padding="same", activation="sigmoid", name="reconstruction")(x)
    return keras.Model(inputs=image, outputs={"reconstruction": x}, name="autoencoder")
