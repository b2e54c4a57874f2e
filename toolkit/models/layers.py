"""The toolkit's custom layers, created per Keras module (Keras 3 or tf_keras) and registered for safe loading.

A layer class has to subclass the ``Layer`` of the module that builds the model, so each class comes from a
factory cached per module. In Keras 3 each class is registered as ``toolkit>ClassName``; a saved ``.keras`` file
then loads with ``safe_mode=True`` once :func:`register` (or ``toolkit.models.register_custom_objects()``) ran.
No Lambda layers anywhere: safe-mode loading refuses them.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from toolkit.models.blocks import is_keras3, resolve_keras

PACKAGE = "toolkit"  # registered names are "toolkit>ClassName"
_CACHE: dict[Any, types.SimpleNamespace] = {}


def custom_layers(keras: Any = None) -> types.SimpleNamespace:
    """The custom layer classes for ``keras`` (None -> Keras 3): ``PositionEmbedding``, ``ConstantVelocity``,
    ``StepFeatures``, ``Sampling``. Created once per module; registered as serializable in Keras 3 (and in tf_keras)."""
    keras = resolve_keras(keras)
    if keras not in _CACHE:
        classes = _make_classes(keras)
        for cls in vars(classes).values():
            keras.saving.register_keras_serializable(package=PACKAGE)(cls)
        _CACHE[keras] = classes
    return _CACHE[keras]


def custom_objects(keras: Any = None) -> dict[str, type]:
    """``{"toolkit>Name": class}`` for ``load_model(custom_objects=...)`` (useful with tf_keras)."""
    return {f"{PACKAGE}>{name}": cls for name, cls in vars(custom_layers(keras)).items()}


def register() -> None:
    """Create and register the Keras 3 custom layers (needed before ``keras.saving.load_model``)."""
    custom_layers(None)


def _ops(keras: Any) -> types.SimpleNamespace:
    """The few tensor ops the layers need, from ``keras.ops`` (Keras 3) or TensorFlow (tf_keras)."""
    if is_keras3(keras):
        ops = keras.ops
        return types.SimpleNamespace(
            exp=ops.exp,
            square=ops.square,
            sum=ops.sum,
            mean=ops.mean,
            shape=ops.shape,
            concatenate=ops.concatenate,
        )
    import tensorflow as tf

    return types.SimpleNamespace(
        exp=tf.exp,
        square=tf.square,
        sum=tf.reduce_sum,
        mean=tf.reduce_mean,
        shape=tf.shape,
        concatenate=tf.concat,
    )


def _make_classes(keras: Any) -> types.SimpleNamespace:
    ops = _ops(keras)
    keras3 = is_keras3(keras)

    class PositionEmbedding(keras.layers.Layer):
        """Adds a learned (sequence_length, features) embedding to a (batch, sequence_length, features) input."""

        def __init__(self, initializer: str = "random_normal", **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.initializer = initializer

        def build(self, input_shape: Any) -> None:
            length, features = int(input_shape[-2]), int(input_shape[-1])
            self.embedding = self.add_weight(
                name="embedding",
                shape=(length, features),
                initializer=keras.initializers.get(self.initializer),
                trainable=True,
            )
            super().build(input_shape)

        def call(self, inputs: Any) -> Any:
            return inputs + self.embedding  # broadcast over the batch: one int8 ADD with a constant

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "initializer": self.initializer}

    class ConstantVelocity(keras.layers.Layer):
        """(batch, T, 2) observed positions -> (batch, horizon, 2) constant-velocity extrapolation.

        Output step k (1-based) is ``k * (p[T-1] - p[T-2])``: positions relative to the last observed point, so
        a network that adds a residual to this starts at the constant-velocity baseline. No weights: it lowers
        to STRIDED_SLICE, SUB and a MUL by a constant, all int8 builtins.
        """

        def __init__(self, horizon: int = 12, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.horizon = int(horizon)
            self._steps = np.arange(1, self.horizon + 1, dtype=np.float32).reshape(1, self.horizon, 1)

        def call(self, inputs: Any) -> Any:
            velocity = inputs[:, -1:, :] - inputs[:, -2:-1, :]  # (batch, 1, 2)
            return velocity * self._steps

        def compute_output_shape(self, input_shape: Any) -> Any:
            return (input_shape[0], self.horizon, input_shape[-1])

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "horizon": self.horizon}

    class StepFeatures(keras.layers.Layer):
        """(batch, T >= 3, 2) behaviour track -> (batch, T, 4): each point with the step that led to it (metres).

        The track's points before the last step enter scaled by ``older_scale`` (int8 input precision, see
        :mod:`toolkit.adapters.behaviour`); the steps are computed in metres without ever forming the unscaled
        far points (differences of neighbours first, then the constant), so the int8 tensors keep small ranges.
        The first point has no step before it and repeats the second one's. No weights: STRIDED_SLICE, SUB,
        MUL and CONCATENATION, all int8 builtins.
        """

        def __init__(self, older_scale: float = 0.25, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.older_scale = float(older_scale)

        def call(self, inputs: Any) -> Any:
            inverse = 1.0 / self.older_scale
            older = (inputs[:, 1:-2, :] - inputs[:, :-3, :]) * inverse  # both points scaled
            middle = inputs[:, -2:-1, :] - inputs[:, -3:-2, :] * inverse  # unscaled minus scaled
            last = inputs[:, -1:, :] - inputs[:, -2:-1, :]
            steps = ops.concatenate([older[:, :1, :], older, middle, last], 1)
            return ops.concatenate([inputs, steps], -1)

        def compute_output_shape(self, input_shape: Any) -> Any:
            return (*input_shape[:-1], 2 * input_shape[-1])

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "older_scale": self.older_scale}

    class Sampling(keras.layers.Layer):
        """[z_mean, z_log_var] -> z. Draws ``z_mean + exp(z_log_var / 2) * eps`` and adds the KL term with
        ``add_loss`` ONLY when ``training=True``; otherwise returns ``z_mean`` (deterministic, and
        unconditional random ops do not convert to TFLite; STACK.md)."""

        def __init__(self, kl_weight: float = 1.0, seed: int | None = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.kl_weight = float(kl_weight)
            self.seed = seed
            # Keras 3 random ops need a seed generator (its state is not a weight: counts stay equal to tf_keras).
            self.seed_generator = keras.random.SeedGenerator(seed) if keras3 else None

        def call(self, inputs: Any, training: Any = None) -> Any:
            z_mean, z_log_var = inputs
            if not training:
                return z_mean
            kl = -0.5 * ops.mean(ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1))
            self.add_loss(self.kl_weight * kl)
            if keras3:
                eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
            else:
                import tensorflow as tf

                eps = tf.random.normal(ops.shape(z_mean), seed=self.seed)
            return z_mean + ops.exp(0.5 * z_log_var) * eps

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape[0]

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "kl_weight": self.kl_weight, "seed": self.seed}

    return types.SimpleNamespace(
        PositionEmbedding=PositionEmbedding,
        ConstantVelocity=ConstantVelocity,
        StepFeatures=StepFeatures,
        Sampling=Sampling,
    )
