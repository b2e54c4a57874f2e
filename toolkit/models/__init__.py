"""Keras 3 model definitions for every model kind in ``toolkit.capabilities.MODEL_KINDS``.

Each kind is a module ``toolkit.models.<kind>`` with a frozen dataclass ``Config`` and
``build(config=Config(), keras=None) -> keras.Model``: a functional model with named inputs and a dict of named
outputs (output layer name == output name). ``keras=None`` builds with Keras 3; passing the ``tf_keras``
module builds the same architecture (same weights, in the same order) for tfmot QAT and pruning.

>>> from toolkit.models import build_model, config_for
>>> config_for("detector").input_shape
(192, 256, 3)
>>> model = build_model("detector", {"width": 0.5})          # imports Keras only now

Importing this package is cheap: TensorFlow / Keras load only when a model is built or layers registered.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from toolkit.capabilities import MODEL_KINDS
from toolkit.config import apply_overrides, suggest
from toolkit.errors import UsageError

__all__ = ["build_model", "builder", "config_for", "register_custom_objects"]


def builder(kind: str) -> ModuleType:
    """The builder module of ``kind`` (e.g. ``toolkit.models.detector``); UsageError for an unknown kind."""
    if kind not in MODEL_KINDS:
        raise UsageError(
            f"unknown model kind '{kind}'{suggest(kind, MODEL_KINDS)} (choose from {', '.join(MODEL_KINDS)})"
        )
    return importlib.import_module(f"toolkit.models.{MODEL_KINDS[kind].module}")


def config_for(kind: str, overrides: Mapping[str, Any] | None = None) -> Any:
    """The ``Config`` of ``kind`` with its defaults, plus validated ``overrides`` (unknown keys -> UsageError)."""
    config = builder(kind).Config()
    return apply_overrides(config, overrides or {}, where=f"{kind} model config") if overrides else config


def build_model(kind: str, config_overrides: Mapping[str, Any] | None = None, keras: Any = None) -> Any:
    """Build a fresh (untrained) model of ``kind``; ``keras`` None = Keras 3, or the tf_keras module."""
    return builder(kind).build(config_for(kind, config_overrides), keras=keras)


def register_custom_objects() -> None:
    """Import every builder and register the toolkit's custom Keras 3 layers (``toolkit>...``) so that
    ``keras.saving.load_model(path, safe_mode=True)`` can rebuild any model this package saved."""
    for kind in MODEL_KINDS:
        builder(kind)
    from toolkit.models import layers, tflite_layers

    layers.register()
    tflite_layers.register()  # the TFLite-exact layers of models rebuilt by `toolkit import`
