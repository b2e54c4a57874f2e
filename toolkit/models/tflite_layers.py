"""Registered Keras 3 layers for the few TFLite ops that no built-in Keras layer reproduces exactly.

Imports Keras at import time: import this module only when building or loading an imported model. The classes
are registered as ``toolkit>TFLite...``, so a saved ``.keras`` file loads with ``safe_mode=True`` once this
module is imported (:func:`register`). No Lambda layers: safe-mode loading refuses them. Imported models use
these only where needed (an ARG_MAX head, an align_corners resize, a constant operand, a general TILE, a
[-1, 1] clip); a MobileNetV2 backbone cut is plain Conv2D / DepthwiseConv2D / Add and loads in stock Keras.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

PACKAGE = "toolkit"


def register() -> None:
    """Nothing to do beyond importing this module (the decorators register the classes); call it before
    ``keras.saving.load_model`` on a model written by ``toolkit import``."""


def bilinear_matrix(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """(out, in) interpolation weights of TFLite's RESIZE_BILINEAR along one axis (its reference kernel's maths,
    in float32): row ``o`` mixes input rows floor(y) and ceil(y) (clamped) of the scaled coordinate y."""
    scale = np.float32(in_size / out_size)
    if align_corners and out_size > 1:
        scale = np.float32((in_size - 1) / (out_size - 1))
    pos = np.arange(out_size, dtype=np.float32)
    y = (pos + np.float32(0.5)) * scale - np.float32(0.5) if half_pixel_centers else pos * scale
    lower = np.maximum(np.floor(y), 0).astype(np.int64)
    upper = np.minimum(np.ceil(y), in_size - 1).astype(np.int64)
    frac = y - lower.astype(np.float32)
    matrix = np.zeros((out_size, in_size), np.float32)
    np.add.at(matrix, (np.arange(out_size), lower), 1 - frac)
    np.add.at(matrix, (np.arange(out_size), upper), frac)
    return matrix


def nearest_indices(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """Source index of each output position for TFLite's RESIZE_NEAREST_NEIGHBOR (reference kernel maths)."""
    scale = np.float32(in_size / out_size)
    if align_corners and out_size > 1:
        scale = np.float32((in_size - 1) / (out_size - 1))
    offset = np.float32(0.5 if half_pixel_centers else 0.0)
    pos = (np.arange(out_size, dtype=np.float32) + offset) * scale
    # TfLiteRound rounds half away from zero (np.round would round half to even)
    index = np.floor(pos + np.float32(0.5)) if align_corners else np.floor(pos)
    return np.clip(index.astype(np.int64), 0, in_size - 1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class TFLiteResize(keras.layers.Layer):
    """Resize (N, H, W, C) to ``size`` exactly as TFLite does for any align_corners / half_pixel_centers pair:
    bilinear as two small interpolation matrices (einsum), nearest as two index gathers. Keras' own Resizing
    only implements half-pixel centres."""

    def __init__(
        self,
        size: tuple[int, int],
        method: str = "bilinear",
        align_corners: bool = False,
        half_pixel_centers: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if method not in ("bilinear", "nearest"):
            raise ValueError(f"TFLiteResize: method must be 'bilinear' or 'nearest', got {method!r}")
        self.size = (int(size[0]), int(size[1]))
        self.method = method
        self.align_corners = bool(align_corners)
        self.half_pixel_centers = bool(half_pixel_centers)

    def build(self, input_shape: Any) -> None:
        in_h, in_w = int(input_shape[1]), int(input_shape[2])
        table = bilinear_matrix if self.method == "bilinear" else nearest_indices
        self._rows = table(in_h, self.size[0], self.align_corners, self.half_pixel_centers)
        self._cols = table(in_w, self.size[1], self.align_corners, self.half_pixel_centers)
        super().build(input_shape)

    def call(self, inputs: Any) -> Any:
        if self.method == "nearest":
            return ops.take(ops.take(inputs, self._rows, axis=1), self._cols, axis=2)
        rows = ops.convert_to_tensor(self._rows, dtype=inputs.dtype)
        cols = ops.convert_to_tensor(self._cols, dtype=inputs.dtype)
        return ops.einsum("bhwc,Ww->bhWc", ops.einsum("bhwc,Hh->bHwc", inputs, rows), cols)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], *self.size, input_shape[3])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "size": list(self.size),
            "method": self.method,
            "align_corners": self.align_corners,
            "half_pixel_centers": self.half_pixel_centers,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class TFLiteArgMax(keras.layers.Layer):
    """Index of the largest value along ``axis`` (first one on ties, like TFLite), as ``output_dtype``."""

    def __init__(self, axis: int = -1, output_dtype: str = "int64", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = int(axis)
        self.output_dtype = output_dtype

    def call(self, inputs: Any) -> Any:
        return ops.cast(ops.argmax(inputs, axis=self.axis), self.output_dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis, "output_dtype": self.output_dtype}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TFLiteConstantOp(keras.layers.Layer):
    """``x + c``, ``x * c``, ``x - c`` or ``c - x`` with a stored (non-trainable) constant ``c`` of ``shape``,
    broadcast as numpy does (TFLite ADD / MUL / SUB with one constant operand)."""

    def __init__(self, op: str, shape: tuple[int, ...], constant_first: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if op not in ("add", "mul", "sub"):
            raise ValueError(f"TFLiteConstantOp: op must be add, mul or sub, got {op!r}")
        self.op = op
        self.shape = tuple(int(d) for d in shape)
        self.constant_first = bool(constant_first)

    def build(self, input_shape: Any) -> None:
        self.constant = self.add_weight(
            name="constant", shape=self.shape, initializer="zeros", trainable=False
        )
        super().build(input_shape)

    def call(self, inputs: Any) -> Any:
        if self.op == "add":
            return inputs + self.constant
        if self.op == "mul":
            return inputs * self.constant
        return self.constant - inputs if self.constant_first else inputs - self.constant

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "op": self.op,
            "shape": list(self.shape),
            "constant_first": self.constant_first,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class TFLiteTile(keras.layers.Layer):
    """TFLite TILE with constant ``multiples`` (the batch multiple must be 1)."""

    def __init__(self, multiples: tuple[int, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.multiples = tuple(int(m) for m in multiples)

    def call(self, inputs: Any) -> Any:
        return ops.tile(inputs, self.multiples)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], *(d * m for d, m in zip(input_shape[1:], self.multiples[1:], strict=True)))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "multiples": list(self.multiples)}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TFLiteClip(keras.layers.Layer):
    """Clip to [min_value, max_value] (TFLite RELU_N1_TO_1, as an op or a fused activation)."""

    def __init__(self, min_value: float = -1.0, max_value: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_value, self.max_value = float(min_value), float(max_value)

    def call(self, inputs: Any) -> Any:
        return ops.clip(inputs, self.min_value, self.max_value)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "min_value": self.min_value, "max_value": self.max_value}
