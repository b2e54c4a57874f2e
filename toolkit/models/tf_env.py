"""Importing TensorFlow quietly: its C++ logging (oneDNN, CUDA, absl) is silenced unless the user asks for it
(``--verbose`` sets TOOLKIT_VERBOSE), so a training or a conversion prints its result, or one line saying why it
failed; and a device install (no TensorFlow) gets one line naming the extra to install.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Any

from toolkit.errors import UsageError
from toolkit.fileio import captured_fd2

# TensorFlow's C++ logging (oneDNN, CUDA, absl) is silenced unless the user asks for it (--verbose sets
# TOOLKIT_VERBOSE): a conversion prints its result, or one line saying why it failed.
VERBOSE = bool(os.environ.get("TOOLKIT_VERBOSE"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if VERBOSE else "3")


def quiet_tensorflow(purpose: str = "converting") -> Any:
    """Import TensorFlow with its log noise turned down; a clear error naming ``purpose`` (what needs it:
    "converting", "training", ...) when the train extra is missing."""
    try:
        # TF and XLA print absl C++ log lines at import, before TF_CPP_MIN_LOG_LEVEL applies: keep fd 2 clean.
        with warnings.catch_warnings(), captured_native_stderr():
            warnings.simplefilter("ignore")
            import tensorflow as tf
    except ImportError:
        raise UsageError(
            f"{purpose} needs TensorFlow, which a device install does not have: "
            f"pip install 'edge-toolkit[train]'"
        ) from None
    tf.get_logger().setLevel("INFO" if VERBOSE else "ERROR")
    with contextlib.suppress(Exception):
        import absl.logging

        absl.logging.set_verbosity(absl.logging.INFO if VERBOSE else absl.logging.ERROR)
    return tf


def captured_native_stderr() -> Any:
    """Hold the converter's C++ logging (fd 2) back, unless --verbose."""
    return contextlib.nullcontext([]) if VERBOSE else captured_fd2()
