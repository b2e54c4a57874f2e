"""Which TFLite interpreter package runs the model: ai-edge-litert, else tflite_runtime, else tf.lite.

The first importable one wins (or the one named by ``TOOLKIT_BACKEND`` / ``backend=``); the choice is reported
with every result because accuracy and speed differ between them (shared/STACK.md: tf.lite's XNNPACK path was
10x less accurate on an int8 Transformer, tflite_runtime 2.14 cannot load newer op versions).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from functools import cache
from typing import Any

from toolkit.errors import UsageError

BACKENDS: tuple[str, ...] = ("ai_edge_litert", "tflite_runtime", "tensorflow")


@dataclass(frozen=True)
class Backend:
    """One importable TFLite interpreter package: its name and version, its ``Interpreter`` class,
    its ``load_delegate`` function and its op-resolver enum (None where the package has none)."""

    name: str  # package that provides the interpreter
    version: str
    interpreter_cls: Any
    load_delegate: Any
    op_resolver_type: Any  # enum with BUILTIN_WITHOUT_DEFAULT_DELEGATES, or None


def _load(name: str) -> Backend:
    from importlib.metadata import PackageNotFoundError, version

    if name == "ai_edge_litert":
        module = importlib.import_module("ai_edge_litert.interpreter")
        dist = "ai-edge-litert"
    elif name == "tflite_runtime":
        _check_tflite_runtime_numpy()
        module = importlib.import_module("tflite_runtime.interpreter")
        dist = "tflite-runtime"
    elif name == "tensorflow":
        tf = importlib.import_module("tensorflow")
        interp = tf.lite.Interpreter
        return Backend(
            "tensorflow",
            tf.__version__,
            interp,
            tf.lite.experimental.load_delegate,
            getattr(tf.lite.experimental, "OpResolverType", None),
        )
    else:
        raise UsageError(f"unknown runtime backend '{name}'; choose from {', '.join(BACKENDS)}")
    try:
        ver = version(dist)
    except PackageNotFoundError:
        ver = "unknown"
    return Backend(
        name, ver, module.Interpreter, module.load_delegate, getattr(module, "OpResolverType", None)
    )


# tflite-runtime's last release (2.14, 2023) is built against numpy 1.x: with numpy 2 (what this toolkit needs)
# its interpreter fails on the first model ("_ARRAY_API not found"). Checked with 2.14.0 and numpy 2.4.6.
TFLITE_RUNTIME_NUMPY2 = (2, 15)


def _check_tflite_runtime_numpy() -> None:
    from importlib.metadata import PackageNotFoundError, version

    import numpy as np

    try:
        installed = tuple(int(p) for p in version("tflite-runtime").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return
    if installed < TFLITE_RUNTIME_NUMPY2 and int(np.__version__.split(".")[0]) >= 2:
        raise ImportError(
            f"tflite-runtime {'.'.join(map(str, installed))} was built for numpy 1.x and cannot run "
            f"with numpy {np.__version__}: install ai-edge-litert instead (1.4.0 on aarch64, 2.3.0 "
            "on x86_64; pip install . picks the right one)"
        )


@cache
def select_backend(preferred: str | None = None) -> Backend:
    """Return the interpreter backend to use; ``preferred`` (or $TOOLKIT_BACKEND) forces one."""
    wanted = preferred or os.environ.get("TOOLKIT_BACKEND") or None
    if wanted:
        try:
            return _load(wanted)
        except ImportError as exc:
            raise UsageError(f"runtime backend '{wanted}' is not importable here: {exc}") from None
    errors = []
    for name in BACKENDS:
        try:
            return _load(name)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
    raise UsageError(
        "no usable TFLite interpreter: "
        + "; ".join(errors)
        + "; install the device runtime: pip install ai-edge-litert"
    )
