"""Capabilities are data: one table each for quantization modes, I/O types, delegates and model kinds.

These tables drive CLI choices, help text, validation and the benchmark matrix. Nothing here imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QuantMode:
    name: str
    summary: str  # one line for --help
    needs_calibration: bool  # True -> --calib is required (never a silent default dataset)
    integer_only: bool  # True -> every op should run in int8 (except the documented float islands)


QUANT_MODES: dict[str, QuantMode] = {
    m.name: m
    for m in (
        QuantMode("fp32", "float32 weights and activations (reference)", False, False),
        QuantMode("fp16", "float16 weights, float32 compute; half the size", False, False),
        QuantMode(
            "dynamic", "int8 weights, float activations; smaller, often NOT faster on CPU", False, False
        ),
        QuantMode(
            "int8",
            "full integer: int8 weights and activations; fastest on CPU, needed by Edge TPU",
            True,
            True,
        ),
    )
}

# Model I/O types for full-int8 models. float32 keeps quantize/dequantize inside the model.
IO_TYPES: tuple[str, ...] = ("int8", "uint8", "float32")

# Ops that stay float inside an otherwise full-int8 model, and why (shared/STACK.md).
# LayerNormalization lowers to ... DEQUANTIZE -> NEG -> QUANTIZE ...: two float NEG ops per LayerNorm.
DOCUMENTED_FLOAT_OPS: dict[str, str] = {
    "NEG": "LayerNormalization lowers to a float NEG between DEQUANTIZE and QUANTIZE (STACK.md)",
}
# Ops whose only job is moving between float and int8 at the model boundary or around a float island.
BOUNDARY_OPS: frozenset[str] = frozenset({"QUANTIZE", "DEQUANTIZE"})


@dataclass(frozen=True)
class Delegate:
    name: str
    summary: str
    library: str | None  # shared library loaded with load_delegate(); None = built into the runtime


DELEGATES: dict[str, Delegate] = {
    d.name: d
    for d in (
        Delegate("xnnpack", "XNNPACK CPU kernels (the LiteRT default)", None),
        Delegate("none", "reference builtin kernels, no default delegate", None),
        Delegate(
            "edgetpu", "Coral Edge TPU (needs libedgetpu and an _edgetpu.tflite model)", "libedgetpu.so.1"
        ),
    )
}


@dataclass(frozen=True)
class ModelKind:
    name: str
    summary: str
    module: str  # toolkit.models.<module> holds build(config, keras=...) and Config
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]


MODEL_KINDS: dict[str, ModelKind] = {
    k.name: k
    for k in (
        ModelKind(
            "classifier",
            "MobileNet-style CNN classifier (depthwise separable blocks)",
            "classifier",
            ("image",),
            ("probs",),
        ),
        ModelKind(
            "detector",
            "anchor-free pedestrian detector: centre heatmap + box regression",
            "detector",
            ("image",),
            ("heatmap", "box"),
        ),
        ModelKind("segmenter", "U-Net-lite semantic segmenter", "segmenter", ("image",), ("mask",)),
        ModelKind(
            "behaviour",
            "Transformer: 8 observed positions -> 12 future positions + crossing probability",
            "behaviour",
            ("track",),
            ("future", "crossing"),
        ),
        ModelKind(
            "autoencoder",
            "convolutional autoencoder; anomaly score = reconstruction error",
            "autoencoder",
            ("image",),
            ("reconstruction",),
        ),
        ModelKind(
            "vae",
            "variational autoencoder (encoder and decoder export separately)",
            "vae",
            ("image",),
            ("z_mean", "z_log_var", "reconstruction"),
        ),
    )
}


def choices_help(table: dict[str, object]) -> str:
    """'a: summary; b: summary' for argparse help."""
    return "; ".join(f"{name}: {getattr(item, 'summary', '')}" for name, item in table.items())


# Exportable parts of a model kind: (kind, input names, output names). A VAE converts as two files.
MODEL_PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "vae_encoder": (("image",), ("z_mean", "z_log_var")),
    "vae_decoder": (("z",), ("image",)),
}


def kind_for_io(
    input_names: list[str] | tuple[str, ...], output_names: list[str] | tuple[str, ...]
) -> str | None:
    """The model kind (or part, e.g. ``vae_decoder``) whose input and output names match; None if foreign."""
    ins, outs = tuple(input_names), set(output_names)
    for kind in MODEL_KINDS.values():
        if ins == kind.input_names and outs == set(kind.output_names):
            return kind.name
    for part, (p_in, p_out) in MODEL_PARTS.items():
        if ins == p_in and outs == set(p_out):
            return part
    if ins == ("image",) and {"z_mean", "z_log_var", "reconstruction"} <= outs:
        return "vae"
    # A social (+ neighbours) and / or multi-modal (+ mode_probs) behaviour model.
    if set(ins) in ({"track"}, {"track", "neighbours"}) and {"future", "crossing"} <= outs <= {
        "future",
        "crossing",
        "mode_probs",
    }:
        return "behaviour"
    return None


def unknown_kind_error(where: str, declarable: list[str] | tuple[str, ...]) -> str:
    """The message for a model whose kind cannot be told: how to declare it (``--task``, one of ``declarable``)
    or which tensor names make it a toolkit kind."""
    names = "; ".join(
        f"{k.name}: {', '.join(k.input_names)} -> {', '.join(k.output_names)}" for k in MODEL_KINDS.values()
    )
    return (
        f"{where}: cannot tell which kind of model this is: declare it with --task KIND "
        f"({', '.join(declarable)}), or name its tensors as a toolkit kind ({names})"
    )
