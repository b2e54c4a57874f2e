"""Selective int8: keep chosen layers in float (TFLite's selective quantization through the quantization
debugger's deny list); the rest stays int8, inputs and outputs keep their int8/uint8 type.

A layer is chosen by a regular expression matched against its Keras layer name and its tensor names as the
debugger reports them (``toolkit quant-report`` lists both). Each kept layer costs a DEQUANTIZE/QUANTIZE pair and
a float kernel; ``--auto-keep-float`` measures that cost per layer.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError, UsageError, one_line
from toolkit.models.tf_env import captured_native_stderr, quiet_tensorflow


def selective_int8(
    saved_model_dir: Path,
    io_type: str,
    representative: Callable[[], Iterator[dict[str, Any]]],
    patterns: tuple[str, ...],
    known: frozenset[str] = frozenset(),
) -> tuple[bytes, list[str]]:
    """Convert to int8 with the tensors whose layer matches any of ``patterns`` kept in float.

    Returns the flatbuffer and the kept tensor names; UsageError when a pattern matches nothing (listing layers).
    """
    from toolkit.convert.quant_report import debugger_input_order, parse_layer_statistics

    tf = quiet_tensorflow()
    try:
        compiled = [re.compile(p) for p in patterns]
    except re.error as exc:
        raise UsageError(f"--keep-float: not a regular expression ({exc})") from None

    names = list(next(iter(representative())))  # the model's input names (the feeds' keys)
    order = list(names)  # re-ordered as the debugger's interpreter takes them once it is built

    def debug_dataset() -> Iterator[list[np.ndarray]]:
        for feeds in representative():
            yield [feeds[k] for k in order]

    def converter() -> Any:
        conv = tf.lite.TFLiteConverter.from_saved_model(
            str(saved_model_dir), signature_keys=["serving_default"]
        )
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        dtype = {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}[io_type]
        conv.inference_input_type = dtype
        conv.inference_output_type = dtype
        return conv

    try:
        with captured_native_stderr():
            probe = tf.lite.experimental.QuantizationDebugger(
                converter=converter(), debug_dataset=debug_dataset
            )
            order[:] = debugger_input_order(probe, names)
            probe.run()
            dump = io.StringIO()
            probe.layer_statistics_dump(dump)
    except Exception as exc:
        raise ToolkitError(f"selective quantization failed: {one_line(str(exc), 240)}") from None
    layers = parse_layer_statistics(dump.getvalue(), known)
    kept = [e.tensor for e in layers if any(p.search(e.layer) or p.search(e.tensor) for p in compiled)]
    unmatched = [
        p.pattern for p in compiled if not any(p.search(e.layer) or p.search(e.tensor) for e in layers)
    ]
    if unmatched:
        names = ", ".join(dict.fromkeys(e.layer for e in layers))
        raise UsageError(f"--keep-float {unmatched[0]!r} matches no quantized layer; layers: {names}")
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=kept, fully_quantize=True)
    try:
        with captured_native_stderr():
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter(), debug_dataset=debug_dataset, debug_options=options
            )
            flatbuffer = bytes(debugger.get_nondebug_quantized_model())
    except Exception as exc:
        raise ToolkitError(f"selective quantization failed: {one_line(str(exc), 240)}") from None
    return flatbuffer, kept
