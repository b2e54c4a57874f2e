"""Where int8 hurts, layer by layer: TFLite's QuantizationDebugger on the model, fed the calibration data.

For every quantized tensor the debugger runs the float op beside the int8 one on the same inputs and collects
the error of the int8 result (mean, max |err|, MSE) and its scale. ``rmse/scale`` is the error in quantization
steps: uniform rounding alone gives about 0.29 (1/sqrt(12)); layers well above that lose more than rounding --
clipped ranges, badly calibrated activations, mixed scales feeding one op. The TFLite guide's rule of thumb marks
layers above 0.7 as suspects; ``--keep-float`` and QAT are the fixes.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.convert.calibration import load_calibration
from toolkit.convert.config import ConvertConfig
from toolkit.errors import ToolkitError, UsageError, one_line
from toolkit.fileio import temp_folder
from toolkit.models.tf_env import captured_native_stderr, quiet_tensorflow

IDEAL_RMSE_PER_STEP = 1 / math.sqrt(12)  # uniform rounding error, in quantization steps
SUSPECT_RMSE_PER_STEP = 0.7


@dataclass(frozen=True)
class LayerError:
    """The int8-vs-float error of one quantized tensor on the calibration data: its scale, RMSE in
    quantization steps (``rmse_per_step``), mean error and max |error| (the last two in the tensor's float units)."""

    index: int  # position in the graph (execution order)
    op: str
    layer: str  # the Keras layer the tensor comes from (best effort from the tensor name)
    tensor: str
    elements: int
    scale: float
    rmse_per_step: float
    mean_error: float
    max_abs_error: float

    @property
    def suspect(self) -> bool:
        """True when the layer loses clearly more than rounding: ``rmse_per_step`` above SUSPECT_RMSE_PER_STEP."""
        return self.rmse_per_step > SUSPECT_RMSE_PER_STEP


@dataclass
class QuantReport:
    """Per-layer int8 error of one model: the model path, the calibration set's description, one
    :class:`LayerError` per quantized tensor and, when evaluated, the float-vs-int8 metric gate."""

    model: str
    calibration: dict[str, Any]
    layers: list[LayerError]  # graph order
    gate: dict[str, Any] | None = None  # float vs int8 on --eval data

    def worst_first(self) -> list[LayerError]:
        """The layers sorted by ``rmse_per_step``, largest first (a new list)."""
        return sorted(self.layers, key=lambda e: -e.rmse_per_step)

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict: thresholds, gate and layers worst first, each with its ``suspect`` flag."""
        return {
            "model": self.model,
            "calibration": self.calibration,
            "ideal_rmse_per_step": IDEAL_RMSE_PER_STEP,
            "suspect_above": SUSPECT_RMSE_PER_STEP,
            "gate": self.gate,
            "layers": [{**asdict(e), "suspect": e.suspect} for e in self.worst_first()],
        }


def debugger_input_order(debugger: Any, names: list[str]) -> list[str]:
    """The model's input names in the order the quantization debugger's interpreter takes them.

    The debugger feeds each debug sample (a list) to ``get_input_details()`` in order, and that order is the
    converted model's, not the Keras model's: a model with inputs (track, neighbours) becomes (neighbours, track).
    Input tensors are named ``serving_default_<name>:0`` after the SavedModel signature.
    """
    details = debugger._quant_interpreter.get_input_details()  # the debugger has no public accessor

    def match(tensor: str) -> str:
        found = [n for n in names if tensor in (n, f"{n}:0", f"serving_default_{n}:0")]
        if len(found) != 1:
            raise ToolkitError(
                f"quantization debugger: cannot match its input {tensor!r} to the model inputs {names}"
            )
        return found[0]

    order = [match(d["name"]) for d in details]
    if sorted(order) != sorted(names):
        raise ToolkitError(f"quantization debugger: inputs {order} do not match the model inputs {names}")
    return order


def _layer_name(tensor: str, known: frozenset[str] = frozenset()) -> str:
    """'model/conv2d_1/Relu;model/conv2d_1/convolution' -> 'conv2d_1' (the second path segment); with the Keras
    model's layer names ``known``, the exported graph's '_1' suffix is taken off when that names a layer."""
    first = tensor.split(";")[0]
    parts = first.split("/")
    name = parts[1] if len(parts) > 2 else parts[-1]
    base = re.sub(r"_\d+$", "", name)
    return base if name not in known and base in known else name


def layer_names(model: Any) -> frozenset[str]:
    """Every layer name of a Keras model, nested models included."""
    names: set[str] = set()
    stack = [model]
    while stack:
        for layer in getattr(stack.pop(), "layers", []):
            names.add(layer.name)
            stack.append(layer)
    return frozenset(names)


def parse_layer_statistics(text: str, known: frozenset[str] = frozenset()) -> list[LayerError]:
    """The CSV of ``QuantizationDebugger.layer_statistics_dump`` -> layer errors in graph order (``known``: the
    Keras model's layer names, to report layers by them)."""
    rows = []
    for i, row in enumerate(csv.DictReader(io.StringIO(text))):
        scale = float(row["scale"])
        mse = float(row["mean_squared_error"])
        rows.append(
            LayerError(
                i,
                row["op_name"],
                _layer_name(row["tensor_name"], known),
                row["tensor_name"],
                int(float(row["num_elements"])),
                scale,
                math.sqrt(mse) / scale if scale > 0 else float("inf"),
                float(row["mean_error"]),
                float(row["max_abs_error"]),
            )
        )
    return rows


def quant_report(model_path: str | Path, calib: str, config: ConvertConfig = ConvertConfig()) -> QuantReport:
    """Per-layer int8 error of ``model_path`` calibrated (and debugged) on ``calib``."""
    from toolkit.capabilities import kind_for_io
    from toolkit.convert import keras_export as kx

    src = Path(model_path)
    model = kx.load_keras_model(src, config.part, config.trust_model)
    inputs = kx.input_specs(model)
    outputs = kx.output_names(model)
    data = load_calibration(
        calib,
        inputs,
        config.calib_samples,
        0,
        config.calib_resize,
        config.seed,
        kind=kind_for_io(list(inputs), outputs) or config.task,
    )
    tf = quiet_tensorflow()
    names = list(inputs)

    def representative() -> Any:
        for i in range(data.count):
            yield {k: data.calibrate[k][i : i + 1] for k in names}

    order = list(names)  # the interpreter's input order, set once the debugger has built it

    def debug_dataset() -> Any:
        for i in range(data.count):
            yield [data.calibrate[k][i : i + 1] for k in order]

    with temp_folder("toolkit-quant-report") as tmp:
        kx.write_batch1_savedmodel(model, inputs, Path(tmp) / "saved_model")
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(Path(tmp) / "saved_model"), signature_keys=["serving_default"]
        )
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        try:
            with captured_native_stderr():
                debugger = tf.lite.experimental.QuantizationDebugger(
                    converter=converter, debug_dataset=debug_dataset
                )
                order[:] = debugger_input_order(debugger, names)
                debugger.run()
        except Exception as exc:  # the debugger's own failures carry their reason in the text
            raise ToolkitError(
                f"quantization debugger failed on {src.name}: {one_line(str(exc), 240)}"
            ) from None
        dump = io.StringIO()
        debugger.layer_statistics_dump(dump)
    layers = parse_layer_statistics(dump.getvalue(), layer_names(model))
    if not layers:
        raise UsageError(f"{src.name}: the debugger found no quantized layer to compare")
    return QuantReport(str(src), data.describe(), layers)


def render_text(report: QuantReport, top: int = 15) -> str:
    """The report as a terminal table of the ``top`` worst layers, followed by the suspects and the gate line."""
    worst = report.worst_first()
    lines = [
        f"{report.model}: int8 error per layer on {report.calibration['count']} calibration samples, worst "
        f"first (rmse/scale in quantization steps; rounding alone ~{IDEAL_RMSE_PER_STEP:.2f}, suspect above "
        f"{SUSPECT_RMSE_PER_STEP})",
        "",
    ]
    header = f"{'#':>4}  {'op':<22} {'layer':<28} {'rmse/scale':>10} {'max|err|':>10} {'mean err':>10} {'scale':>10}"
    lines += [header, "-" * len(header)]
    for e in worst[:top]:
        flag = "  SUSPECT" if e.suspect else ""
        lines.append(
            f"{e.index:>4}  {e.op:<22} {e.layer[:28]:<28} {e.rmse_per_step:>10.3f} {e.max_abs_error:>10.4g} "
            f"{e.mean_error:>10.3g} {e.scale:>10.4g}{flag}"
        )
    if len(worst) > top:
        lines.append(f"... {len(worst) - top} more layers (-o report.md|.html|.json for all)")
    suspects = [e for e in worst if e.suspect]
    lines.append("")
    lines.append(
        f"suspects: {', '.join(e.layer for e in suspects)} -- try --keep-float or QAT"
        if suspects
        else "no suspect layer: every int8 layer is within a few rounding steps of float"
    )
    if report.gate:
        g = report.gate
        lines.append(
            f"model: {g['metric']} {g['float']:.4f} float -> {g['converted']:.4f} int8 on {g['samples']} "
            f"samples of {g['data']} (drop {g['drop']:+.4f})"
        )
    return "\n".join(lines)


def plot_png(report: QuantReport, path: Path) -> None:
    """Bar chart of rmse/scale per layer in graph order, suspects in red, the threshold dashed (OpenCV only)."""
    import cv2

    values = np.array([e.rmse_per_step for e in report.layers])
    width, height, margin = max(480, 12 * len(values) + 80), 300, 50
    image = np.full((height, width, 3), 255, np.uint8)
    top = max(
        float(np.nanmax(values[np.isfinite(values)])) if np.isfinite(values).any() else 1.0,
        SUSPECT_RMSE_PER_STEP * 1.2,
    )

    def y(v: float) -> int:
        return int(height - margin - (height - 2 * margin) * min(v, top) / top)

    bar = (width - 2 * margin) / max(len(values), 1)
    for i, (v, layer) in enumerate(zip(values, report.layers, strict=True)):
        x0 = int(margin + i * bar + 1)
        colour = (40, 40, 220) if layer.suspect else (180, 120, 40)
        cv2.rectangle(image, (x0, y(float(v))), (int(x0 + bar - 2), y(0.0)), colour, -1)
    for level, style in ((SUSPECT_RMSE_PER_STEP, (40, 40, 220)), (IDEAL_RMSE_PER_STEP, (60, 160, 60))):
        for x in range(margin, width - margin, 8):
            cv2.line(image, (x, y(level)), (x + 4, y(level)), style, 1)
    cv2.line(image, (margin, y(0.0)), (width - margin, y(0.0)), (0, 0, 0), 1)
    cv2.putText(
        image,
        "int8 error per layer (rmse / scale, graph order)",
        (margin, 25),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    cv2.putText(
        image, f"{top:.2f}", (5, margin + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA
    )
    cv2.putText(image, "0", (20, y(0.0) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cannot write {path}")


def render_markdown(report: QuantReport, png_name: str | None) -> str:
    """The report as Markdown with every layer worst first; ``png_name`` (relative path of the chart from
    :func:`plot_png`) is linked when given."""
    lines = [
        f"# int8 error per layer: `{Path(report.model).name}`",
        "",
        f"Calibration: `{report.calibration['source']}` ({report.calibration['count']} samples). rmse/scale is "
        f"the error in quantization steps: rounding alone gives ~{IDEAL_RMSE_PER_STEP:.2f}; above "
        f"{SUSPECT_RMSE_PER_STEP} a layer is a suspect.",
        "",
    ]
    if png_name:
        lines += [f"![rmse/scale per layer]({png_name})", ""]
    if report.gate:
        g = report.gate
        lines += [
            f"Model: {g['metric']} {g['float']:.4f} float, {g['converted']:.4f} int8 on {g['samples']} samples "
            f"of `{g['data']}` (drop {g['drop']:+.4f}).",
            "",
        ]
    lines += [
        "| # | op | layer | rmse/scale | max abs err | mean err | scale | |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in report.worst_first():
        lines.append(
            f"| {e.index} | {e.op} | `{e.layer}` | {e.rmse_per_step:.3f} | {e.max_abs_error:.4g} | "
            f"{e.mean_error:.3g} | {e.scale:.4g} | {'suspect' if e.suspect else ''} |"
        )
    return "\n".join(lines) + "\n"


def render_html(report: QuantReport, png: Path | None) -> str:
    """The report as one self-contained HTML page with every layer worst first; the chart at ``png``, when given,
    is embedded as base64."""
    import base64
    import html

    image = (
        f'<img alt="rmse/scale per layer" src="data:image/png;base64,'
        f'{base64.b64encode(png.read_bytes()).decode()}">'
        if png
        else ""
    )
    rows = "".join(
        f"<tr{' class=suspect' if e.suspect else ''}><td>{e.index}</td><td>{e.op}</td><td>{html.escape(e.layer)}</td>"
        f"<td>{e.rmse_per_step:.3f}</td><td>{e.max_abs_error:.4g}</td><td>{e.mean_error:.3g}</td>"
        f"<td>{e.scale:.4g}</td></tr>"
        for e in report.worst_first()
    )
    gate = ""
    if report.gate:
        g = report.gate
        gate = (
            f"<p>Model: {g['metric']} {g['float']:.4f} float, {g['converted']:.4f} int8 on {g['samples']} samples "
            f"(drop {g['drop']:+.4f}).</p>"
        )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>int8 error per layer</title><style>'
        "body{font-family:sans-serif}td,th{padding:2px 8px;text-align:right}tr.suspect{background:#fdd}"
        f"</style></head><body><h1>int8 error per layer: {html.escape(Path(report.model).name)}</h1>"
        f"<p>{report.calibration['count']} calibration samples; rmse/scale is the error in quantization steps "
        f"(rounding alone ~{IDEAL_RMSE_PER_STEP:.2f}, suspect above {SUSPECT_RMSE_PER_STEP}).</p>{gate}{image}"
        "<table><tr><th>#</th><th>op</th><th>layer</th><th>rmse/scale</th><th>max abs err</th><th>mean err</th>"
        f"<th>scale</th></tr>{rows}</table></body></html>\n"
    )
