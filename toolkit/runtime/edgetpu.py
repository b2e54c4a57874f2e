"""What the runtime needs to know about the Coral Edge TPU: compiled models, their CPU originals, install hints.

A model compiled by ``edgetpu_compiler`` holds its mapped graph in one ``edgetpu-custom-op``; only the Edge TPU
delegate (``libedgetpu.so.1``) can run it. Its CPU original conventionally lies beside it without the
``_edgetpu`` suffix. ``--fallback cpu`` runs that original when the Edge TPU is missing -- never silently.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.runtime.tflite_file import ModelFile

CUSTOM_OP = "CUSTOM:edgetpu-custom-op"
LIBRARY = "libedgetpu.so.1"
# Coral's documented install of the runtime (coral.ai/docs/accelerator/get-started), with a signed-by keyring.
CORAL_APT = (
    "curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo gpg --dearmor -o "
    "/etc/apt/keyrings/coral.gpg && echo 'deb [signed-by=/etc/apt/keyrings/coral.gpg] "
    "https://packages.cloud.google.com/apt coral-edgetpu-stable main' | sudo tee "
    "/etc/apt/sources.list.d/coral-edgetpu.list && sudo apt update"
)
INSTALL_LIBRARY = (
    "install libedgetpu1-std from Coral's apt repository (coral-edgetpu-stable; `toolkit doctor` "
    "prints the commands)"
)
CONNECT_DEVICE = (
    "connect it (USB Accelerator: lsusb shows 1a6e:089a or 18d1:9302; replug it after installing "
    "the runtime; M.2/PCIe: /dev/apex_0 via gasket-dkms)"
)
FALLBACK_HINT = "or pass --fallback cpu to run on the CPU instead"
USB_IDS = (("1a6e", "089a"), ("18d1", "9302"))


def is_compiled(model: ModelFile) -> bool:
    """True when ``model`` holds an ``edgetpu-custom-op`` (it cannot run without the Edge TPU delegate)."""
    return any(op.op == CUSTOM_OP for op in model.ops)


def cpu_original(path: str | Path) -> Path | None:
    """``X_edgetpu.tflite`` -> ``X.tflite`` beside it, if that file exists."""
    file = Path(path)
    if not file.stem.endswith("_edgetpu"):
        return None
    original = file.with_name(file.stem.removesuffix("_edgetpu") + file.suffix)
    return original if original.is_file() else None


def unavailable_message(error: str) -> str:
    """One line for a failed ``load_delegate('libedgetpu.so.1')``: which piece is missing and how to get it."""
    if "cannot open shared object" in error or "No such file" in error or "not found" in error:
        return f"Edge TPU runtime {LIBRARY} not found: {INSTALL_LIBRARY}; {FALLBACK_HINT}"
    return f"no Edge TPU found by {LIBRARY} ({error}): {CONNECT_DEVICE}; {FALLBACK_HINT}"
