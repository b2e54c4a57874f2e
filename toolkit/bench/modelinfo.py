"""What a benchmarked model is: its format (fp32/fp16/dynamic/int8) and the family it is compared within.

Format, first rule that applies:
1. the manifest's ``"mode"`` key (written by ``toolkit convert``; ``"quantize"`` / ``"format"`` are read too), when
   it names one of capabilities.QUANT_MODES;
2. the file name's suffix: ``name_fp32``, ``_fp16``, ``_dynamic``, ``_int8`` (an ``_edgetpu`` suffix is ignored);
3. inferred from the file's tensors: float16 weights -> fp16; int8/uint8 activations -> int8; int8 weights with
   float activations -> dynamic; otherwise fp32.

Family (the rows that speed-ups are computed within):
1. the manifest's source model hash (``"source": {"sha256": ...}`` as ``toolkit convert`` writes it, or
   ``"source_sha256"``) -> ``"<kind>@<sha[:12]>"``, so every export of one Keras model is one family whatever the
   file names are (the kind keeps a VAE's encoder and decoder, exported from one file, apart);
2. otherwise the file name without ``.tflite`` and without the format / ``_edgetpu`` suffixes
   (``detector_int8_edgetpu.tflite`` -> ``detector``).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from toolkit.capabilities import QUANT_MODES

_SUFFIX = re.compile(r"(?:[_-](fp32|fp16|dynamic|int8))?(?:[_-]edgetpu)?$", re.IGNORECASE)


def split_name(path: str | Path) -> tuple[str, str | None]:
    """'detector_int8_edgetpu.tflite' -> ('detector', 'int8'); 'pose.tflite' -> ('pose', None)."""
    stem = Path(path).name
    if stem.lower().endswith(".tflite"):
        stem = stem[: -len(".tflite")]
    match = _SUFFIX.search(stem)
    base = stem[: match.start()] if match and match.start() > 0 else stem
    fmt = match.group(1).lower() if match and match.group(1) and match.start() > 0 else None
    return base, fmt


def infer_format(model_file: Any) -> str:
    """Guess the quantization mode from a parsed :class:`toolkit.runtime.ModelFile`'s tensor dtypes."""
    weights = Counter(t.dtype for t in model_file.tensors if t.constant)
    activations = Counter(
        t.dtype for t in model_file.tensors if not t.constant and t.dtype not in ("int32", "bool")
    )
    if weights.get("float16"):
        return "fp16"
    integer_acts = activations.get("int8", 0) + activations.get("uint8", 0)
    if integer_acts and integer_acts >= activations.get("float32", 0):
        return "int8"
    if weights.get("int8"):
        return "dynamic"
    return "fp32"


def model_format(path: str | Path, model_file: Any, manifest: dict[str, Any]) -> tuple[str, str]:
    """(format, how it was decided: 'manifest' | 'name' | 'inferred')."""
    for key in ("mode", "quantize", "format"):
        value = manifest.get(key)
        if isinstance(value, str) and value in QUANT_MODES:
            return value, "manifest"
    _, from_name = split_name(path)
    if from_name:
        return from_name, "name"
    return infer_format(model_file), "inferred"


def source_sha(manifest: dict[str, Any]) -> str | None:
    """SHA-256 of the Keras model a ``.tflite`` came from, read from its manifest (``source_sha256`` or
    ``source.sha256``); None when the manifest records none."""
    value = manifest.get("source_sha256")
    source = manifest.get("source")
    if not value and isinstance(source, dict):
        value = source.get("sha256")
    return str(value) if value else None


def model_family(path: str | Path, manifest: dict[str, Any]) -> str:
    """The family a model's results are compared within: ``"<kind>@<sha[:12]>"`` from the manifest's source hash,
    else the file name without its format suffix (``detector_int8.tflite`` -> ``"detector"``)."""
    sha = source_sha(manifest)
    if sha:
        return f"{manifest.get('kind') or 'model'}@{sha[:12]}"
    return split_name(path)[0]
