"""Tiny Keras models and conversions shared by tests (imports TensorFlow lazily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def tiny_cnn(path: Path, seed: int = 0, size: int = 16) -> Path:
    """Save a tiny 2-output CNN (image -> probs, box) as .keras and return its path."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    probs = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    box = keras.layers.Dense(2, activation="sigmoid", name="box")(x)
    model = keras.Model(inp, {"probs": probs, "box": box}, name="tiny")
    model.save(path)
    return path


def calib_npy(path: Path, n: int = 64, size: int = 16, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    np.save(path, rng.random((n, size, size, 3), dtype=np.float32))
    return path
