"""Small Transformer for pedestrian behaviour: observed track (+ neighbours) -> K future paths + probabilities.

Input ``track`` (8, 2): the observed 2-D positions relative to the LAST observed position (metres, or
normalised image units in the camera pipeline). Outputs ``future`` (12, 2), positions relative to the last
observed one, and ``crossing`` (1,) sigmoid.

Inductive bias: the graph computes the constant-velocity extrapolation from the last two observed points
(``ConstantVelocity``, no weights) and the Transformer predicts a residual on top of it. The residual head's
last Dense starts at zero, so an untrained model IS the constant-velocity baseline and training only has to
learn the deviations (turns, stops, social avoidance).

Social and multi-modal (``neighbours`` M > 0, ``modes`` K > 1): a second input ``neighbours`` (M, 5) holds the M
nearest other pedestrians at the last observed frame in the agent's heading frame
(:func:`toolkit.adapters.behaviour.neighbour_input`: position, velocity, present flag; absent rows zero). Each
is encoded by a small bias-free MLP (so an absent neighbour encodes to exactly zero) and max-pooled. With K > 1
``future`` is (K, 12, 2): K paths, each the constant-velocity path plus its own residual, and ``mode_probs`` (K,)
their softmax probabilities. K = 1 and M = 0 build the original single-output model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from toolkit.config import Limits, check_ranges
from toolkit.errors import UsageError
from toolkit.models.blocks import resolve_keras
from toolkit.models.layers import custom_layers


@dataclass(frozen=True)
class Config:
    observed: int = 8  # observed positions in "track"
    horizon: int = 12  # predicted positions in "future"
    d_model: int = 32  # embedding width of each time step
    num_heads: int = 2  # attention heads (key_dim = d_model // num_heads)
    num_blocks: int = 2  # Transformer encoder blocks
    ffn_dim: int = 64  # hidden width of each block's feed-forward network
    activation: Literal["relu", "gelu"] = "relu"  # FFN activation (ReLU maps to more accelerators than GELU)
    head_dim: int = 64  # hidden width of the output heads
    dropout: float = 0.1  # dropout in attention and FFN (training only)
    modes: int = 1  # K predicted paths; > 1 adds output mode_probs and makes future (K, horizon, 2)
    neighbours: int = 0  # M nearest other pedestrians in input "neighbours" (M, 5); 0 = no social input
    social_dim: int = 32  # width of the per-neighbour encoder
    step_features: bool = False  # each observed point also carries the step that led to it (StepFeatures)

    LIMITS: ClassVar[
        Limits
    ] = {  # valid values of numeric keys (config files, --set); build() checks combinations
        "observed": (1, 10_000),
        "horizon": (1, 10_000),
        "d_model": (1, 4096),
        "num_heads": (1, 256),
        "num_blocks": (1, 256),
        "ffn_dim": (1, 65_536),
        "head_dim": (1, 65_536),
        "dropout": (0.0, 0.99),
        "modes": (1, 64),
        "neighbours": (0, 256),
        "social_dim": (1, 4096),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "behaviour model config")


def build(config: Config = Config(), keras: Any = None) -> Any:
    """Build the model: {"track"} -> {"future", "crossing"}; ``keras`` None = Keras 3, or the tf_keras module."""
    keras = resolve_keras(keras)
    if config.observed < 2:
        raise UsageError(
            f"behaviour: observed must be at least 2 (velocity needs two points), got {config.observed}"
        )
    if config.horizon < 1 or config.num_blocks < 1 or config.num_heads < 1:
        raise UsageError("behaviour: horizon, num_blocks and num_heads must be at least 1")
    if config.d_model % config.num_heads:
        raise UsageError(
            f"behaviour: d_model {config.d_model} must be divisible by num_heads {config.num_heads}"
        )
    layers = keras.layers
    custom = custom_layers(keras)

    track = keras.Input(shape=(config.observed, 2), name="track")
    tokens = track
    if config.step_features:
        if config.observed < 3:
            raise UsageError(f"behaviour: step_features needs observed >= 3, got {config.observed}")
        from toolkit.adapters.behaviour import OLDER_SCALE

        tokens = custom.StepFeatures(OLDER_SCALE, name="step_features")(track)
    x = layers.Dense(config.d_model, name="embed")(tokens)
    x = custom.PositionEmbedding(name="position")(x)
    for i in range(config.num_blocks):
        name = f"block{i + 1}"
        h = layers.LayerNormalization(epsilon=1e-5, name=f"{name}_ln1")(x)
        h = layers.MultiHeadAttention(
            config.num_heads,
            config.d_model // config.num_heads,
            dropout=config.dropout,
            name=f"{name}_attention",
        )(h, h)
        x = layers.Add(name=f"{name}_add1")([x, h])
        h = layers.LayerNormalization(epsilon=1e-5, name=f"{name}_ln2")(x)
        h = layers.Dense(config.ffn_dim, activation=config.activation, name=f"{name}_ffn1")(h)
        h = layers.Dense(config.d_model, name=f"{name}_ffn2")(h)
        if config.dropout > 0:
            h = layers.Dropout(config.dropout, name=f"{name}_dropout")(h)
        x = layers.Add(name=f"{name}_add2")([x, h])
    x = layers.LayerNormalization(epsilon=1e-5, name="final_ln")(x)
    x = layers.Flatten(name="flatten")(x)  # keeps the time order (pooling would lose it)
    inputs = track
    if config.neighbours > 0:
        neighbours = keras.Input(shape=(config.neighbours, 5), name="neighbours")
        # No biases: an absent neighbour (all-zero row) encodes to zero and cannot win the max pool.
        n = layers.Dense(config.social_dim, activation="relu", use_bias=False, name="social1")(neighbours)
        n = layers.Dense(config.social_dim, activation="relu", use_bias=False, name="social2")(n)
        n = layers.GlobalMaxPooling1D(name="social_pool")(n)
        x = layers.Concatenate(name="agent_and_social")([x, n])
        inputs = [track, neighbours]  # a list: callers feed (track, neighbours) in this order
    if config.modes > 1:
        return _multimodal(keras, layers, custom, config, track, inputs, x)

    h = layers.Dense(config.head_dim, activation="relu", name="future_hidden")(x)
    residual = layers.Dense(config.horizon * 2, kernel_initializer="zeros", name="future_residual")(h)
    residual = layers.Reshape((config.horizon, 2), name="future_residual_steps")(residual)
    baseline = custom.ConstantVelocity(config.horizon, name="constant_velocity")(track)
    future = layers.Add(name="future")([baseline, residual])

    h = layers.Dense(config.head_dim, activation="relu", name="crossing_hidden")(x)
    crossing = layers.Dense(1, activation="sigmoid", name="crossing")(h)
    return keras.Model(inputs=inputs, outputs={"future": future, "crossing": crossing}, name="behaviour")


def _multimodal(keras: Any, layers: Any, custom: Any, config: Config, track: Any, inputs: Any, x: Any) -> Any:
    """K paths (constant velocity + K residuals), their softmax probabilities and the crossing probability."""
    k, horizon = config.modes, config.horizon
    h = layers.Dense(config.head_dim, activation="relu", name="future_hidden")(x)
    # Small random residual weights (not zeros): the K modes must start apart or winner-takes-all never splits them.
    residual = layers.Dense(
        k * horizon * 2,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.02, seed=1),
        name="future_residual",
    )(h)
    residual = layers.Reshape((k, horizon, 2), name="future_residual_steps")(residual)
    baseline = custom.ConstantVelocity(horizon, name="constant_velocity")(track)
    baseline = layers.Flatten(name="constant_velocity_flat")(baseline)
    baseline = layers.RepeatVector(k, name="constant_velocity_modes")(baseline)
    baseline = layers.Reshape((k, horizon, 2), name="constant_velocity_steps")(baseline)
    future = layers.Add(name="future")([baseline, residual])
    h = layers.Dense(config.head_dim, activation="relu", name="mode_hidden")(x)
    logits = layers.Dense(k, name="mode_logits")(h)
    mode_probs = layers.Softmax(name="mode_probs")(logits)
    h = layers.Dense(config.head_dim, activation="relu", name="crossing_hidden")(x)
    crossing = layers.Dense(1, activation="sigmoid", name="crossing")(h)
    outputs = {"future": future, "mode_probs": mode_probs, "crossing": crossing}
    return keras.Model(inputs=inputs, outputs=outputs, name="behaviour")
