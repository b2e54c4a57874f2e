"""Variational autoencoder whose encoder and decoder are nested models that export separately.

* ``encoder``: ``image`` (28, 28, 1) -> {"z_mean", "z_log_var"} (latent_dim,)
* ``decoder``: ``z`` (latent_dim,) -> {"image"} (28, 28, 1) sigmoid
* the full model: ``image`` -> {"z_mean", "z_log_var", "reconstruction"}; extract the parts with
  ``model.get_layer("encoder")`` / ``model.get_layer("decoder")``.

``Sampling`` draws z only when ``training=True`` and then adds the KL term with ``add_loss``; at inference (and
in any export) z = z_mean, so the full graph is deterministic and converts (unconditional random ops do not;
STACK.md). Train with ``model.fit(x, {"reconstruction": x})`` and
``loss={"reconstruction": "binary_crossentropy"}``: that loss is a per-pixel mean, so the KL term is divided by
the pixel count and ``beta = 1`` keeps the two in the ELBO's proportion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from toolkit.config import Limits, check_ranges
from toolkit.errors import UsageError
from toolkit.models.blocks import check_image_shape, conv_bn, resolve_keras
from toolkit.models.layers import custom_layers


@dataclass(frozen=True)
class Config:
    input_shape: tuple[int, int, int] = (28, 28, 1)  # (height, width, channels); H and W multiples of 4
    filters: tuple[int, int] = (32, 64)  # channels of the two stride-2 encoder convolutions (mirrored back)
    hidden: int = 64  # Dense width between the convolutions and the latent code
    latent_dim: int = 8  # size of z
    beta: float = 1.0  # weight of the KL term relative to the summed reconstruction loss (1 = the ELBO)

    LIMITS: ClassVar[
        Limits
    ] = {  # valid values of numeric keys (config files, --set); build() checks combinations
        "input_shape": (1, 4096),  # each of height, width, channels
        "filters": (1, 4096),
        "hidden": (1, 65_536),
        "latent_dim": (1, 65_536),
        "beta": (0.0, 1000.0),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "vae model config")


def _validate(config: Config) -> tuple[int, int, int]:
    shape = check_image_shape(config.input_shape, 4, "vae")
    if len(config.filters) != 2 or min(config.filters) < 1 or config.latent_dim < 1 or config.hidden < 1:
        raise UsageError(
            f"vae: filters needs 2 positive entries, hidden and latent_dim >= 1; got {config.filters}, "
            f"{config.hidden}, {config.latent_dim}"
        )
    if config.beta < 0:
        raise UsageError(f"vae: beta must be >= 0, got {config.beta}")
    return shape


def build_encoder(config: Config = Config(), keras: Any = None) -> Any:
    """The encoder model "encoder": {"image"} -> {"z_mean", "z_log_var"}."""
    keras = resolve_keras(keras)
    shape = _validate(config)
    image = keras.Input(shape=shape, name="image")
    x = conv_bn(keras, image, config.filters[0], "enc1", stride=2)
    x = conv_bn(keras, x, config.filters[1], "enc2", stride=2)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(config.hidden, activation="relu", name="hidden")(x)
    z_mean = keras.layers.Dense(config.latent_dim, name="z_mean")(x)
    z_log_var = keras.layers.Dense(config.latent_dim, name="z_log_var")(x)
    return keras.Model(inputs=image, outputs={"z_mean": z_mean, "z_log_var": z_log_var}, name="encoder")


def build_decoder(config: Config = Config(), keras: Any = None) -> Any:
    """The decoder model "decoder": {"z"} (latent_dim,) -> {"image"} (H, W, C) sigmoid."""
    keras = resolve_keras(keras)
    height, width, channels = _validate(config)
    f1, f2 = config.filters
    z = keras.Input(shape=(config.latent_dim,), name="z")
    x = keras.layers.Dense(config.hidden, activation="relu", name="hidden")(z)
    x = keras.layers.Dense((height // 4) * (width // 4) * f2, activation="relu", name="expand")(x)
    x = keras.layers.Reshape((height // 4, width // 4, f2), name="reshape")(x)
    x = keras.layers.Conv2DTranspose(f1, 3, strides=2, padding="same", activation="relu", name="up1")(x)
    x = keras.layers.Conv2DTranspose(f1, 3, strides=2, padding="same", activation="relu", name="up2")(x)
    x = keras.layers.Conv2D(channels, 3, padding="same", activation="sigmoid", name="image")(x)
    return keras.Model(inputs=z, outputs={"image": x}, name="decoder")


def build(config: Config = Config(), keras: Any = None) -> Any:
    """The full VAE: {"image"} -> {"z_mean", "z_log_var", "reconstruction"} with nested "encoder"/"decoder"."""
    keras = resolve_keras(keras)
    height, width, channels = _validate(config)
    encoder = build_encoder(config, keras)
    decoder = build_decoder(config, keras)
    sampling = custom_layers(keras).Sampling(
        kl_weight=config.beta / (height * width * channels), name="sampling"
    )

    image = keras.Input(shape=(height, width, channels), name="image")
    codes = encoder(image)
    z = sampling([codes["z_mean"], codes["z_log_var"]])
    reconstruction = decoder(z)["image"]
    # Identity layers give every top-level output a layer of the same name (the contract for all kinds).
    outputs = {
        "z_mean": keras.layers.Identity(name="z_mean")(codes["z_mean"]),
        "z_log_var": keras.layers.Identity(name="z_log_var")(codes["z_log_var"]),
        "reconstruction": keras.layers.Identity(name="reconstruction")(reconstruction),
    }
    return keras.Model(inputs=image, outputs=outputs, name="vae")
