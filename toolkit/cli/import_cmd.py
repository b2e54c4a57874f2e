"""toolkit import MODEL.tflite -o OUT.keras [--outputs NAME,...] [--pixels] [--list] [--json]"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from toolkit.cli.common import StatusLine, add_json_flag, config_type, emit

IMPORT_CONFIG = "toolkit.convert.tflite_import:ImportConfig"  # the ranges of --check-samples and --seed

HELP = "rebuild a float Keras model from a (int8/uint8 or float) .tflite graph: fine-tune it or use it as a backbone"
DESCRIPTION = (
    HELP
    + """

  toolkit import mobilenet_v2_1.0_224_quant.tflite --list            # tensors, shapes, strides: cut points
  toolkit import mobilenet_v2_1.0_224_quant.tflite -o mnv2.keras --pixels
  toolkit import mobilenet_v2_1.0_224_quant.tflite -o backbone.keras --input-size 192x256 --input-range unit \\
      --outputs MobilenetV2_expanded_conv_6_expand_Relu6,MobilenetV2_expanded_conv_13_expand_Relu6

Weights are dequantized ((q - zero_point) * scale, per channel where present); the model computes in float what
the integer graph approximates. Input: the real value the quantized input represents (Coral MobileNetV2:
(pixel - 128) / 128), or through a Rescaling layer 0-255 pixels (--pixels) or pixel / 255 (--input-range unit).
Outputs: real values (ARG_MAX stays integer). Writes OUT.keras and OUT.json (source sha256, op histogram, I/O and input convention, parameter
count, and the agreement with the original measured through LiteRT, in output quantization steps). Nothing is
written if any step fails. Load the result with keras.saving.load_model after
toolkit.convert.tflite_import.register_layers() when it uses toolkit> layers (ARG_MAX, align_corners resize).
Ops rebuilt: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD, SUB, MUL, CONCATENATION, PAD, PADV2,
AVERAGE_POOL_2D, MAX_POOL_2D, MEAN, RESHAPE, SQUEEZE, SOFTMAX, LOGISTIC, TANH, RELU, RELU6, RELU_N1_TO_1,
LEAKY_RELU, HARD_SWISH, RESIZE_BILINEAR, RESIZE_NEAREST_NEIGHBOR, QUANTIZE, DEQUANTIZE, ARG_MAX, TILE.
Anything else (an Edge TPU compilation, a custom op) is refused by name: cut before it with --outputs."""
)


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 192x256, got {text!r}") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"expected a positive HEIGHTxWIDTH, got {text!r}")
    return h, w


def _names(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated tensor or layer names (see --list)")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help=".tflite file (uint8 / int8 quantized or float)")
    parser.add_argument("-o", "--output", help="output .keras path (the .json sidecar is written beside it)")
    parser.add_argument(
        "--outputs",
        type=_names,
        help="cut the graph at these tensors (comma-separated tensor or layer names from --list)",
    )
    parser.add_argument(
        "--pixels",
        action="store_true",
        help="take 0-255 pixels like the uint8 input (prepends a Rescaling layer); = --input-range uint8",
    )
    parser.add_argument(
        "--input-range",
        choices=["real", "uint8", "unit"],
        default=None,
        help="what the model takes: real (the dequantized input, default), uint8 (0-255 pixels) or "
        "unit (pixel / 255, the toolkit's image convention: what convert --calib feeds)",
    )
    parser.add_argument(
        "--input-size",
        type=_size,
        metavar="HxW",
        help="build for another input size (fully convolutional cuts only, e.g. a backbone)",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="list the 4-D tensors with shape and stride (backbone cut points) and exit",
    )
    parser.add_argument(
        "--check-images", metavar="DIR", help="images for the agreement check (default: seeded random pixels)"
    )
    parser.add_argument(
        "--check-samples",
        type=config_type(IMPORT_CONFIG, "check_samples"),
        default=4,
        help="inputs in the agreement check (default 4; 0 skips it)",
    )
    parser.add_argument(
        "--seed",
        type=config_type(IMPORT_CONFIG, "seed"),
        default=0,
        help="seed of the random check inputs (default 0)",
    )
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before anything imports TensorFlow
    from toolkit.convert.tflite_import import ImportConfig, import_to_file, list_features
    from toolkit.errors import UsageError

    if args.list:
        features = list_features(Path(args.model))
        emit({"model": args.model, "features": [f.__dict__ for f in features]}, args.json, _render_list)
        return 0
    if not args.output:
        raise UsageError("missing -o OUT.keras (or pass --list to see the tensors you can cut at)")
    if args.pixels and args.input_range not in (None, "uint8"):
        raise UsageError(
            f"--pixels means --input-range uint8; it contradicts --input-range {args.input_range}"
        )
    input_range = "uint8" if args.pixels else args.input_range or "real"
    config = ImportConfig(
        outputs=args.outputs,
        input_range=input_range,
        input_size=args.input_size,
        check_images=args.check_images,
        check_samples=args.check_samples,
        seed=args.seed,
    )
    with StatusLine("import") as status:
        result = import_to_file(Path(args.model), Path(args.output), config, progress=status.show)
    emit(result.manifest, args.json, _render)
    return 0


def _shape(shape: list) -> str:
    return "x".join("?" if d is None else str(d) for d in shape)


def _render(m: dict) -> str:
    out = m["output"]
    lines = [
        f"wrote {out['path']} ({out['size_bytes'] / 2**20:.1f} MiB, {m['parameters']:,} parameters) and "
        f"{Path(out['path']).with_suffix('.json')}",
        f"  rebuilt {m['ops_rebuilt']} of {m['ops_in_file']} ops: "
        + ", ".join(f"{op} {n}" for op, n in m["op_histogram"].items()),
    ]
    for t in m["inputs"]:
        lines.append(f"  input  {t['name']} {_shape(t['keras_shape'])}: {m['input_convention'][t['name']]}")
    for t in m["outputs"]:
        lines.append(f"  output {t['name']} {_shape(t['tflite_shape'][1:])}: {t['value']}")
    for note, n in m["rebuilt_as"].items():
        lines.append(f"  note: {note}" + (f" (x{n})" if n > 1 else ""))
    agreement = m["agreement"]
    if agreement and agreement.get("skipped"):
        lines.append(f"  agreement not measured: {agreement['skipped']}")
    elif agreement:
        lines.append(
            f"  agreement with the original ({agreement['runtime']}) on {agreement['samples']} "
            f"{agreement['inputs']}:"
        )
        for name, e in agreement["outputs"].items():
            if e["kind"] == "indices":
                lines.append(f"    {name}: {100 * e['agreement']:.2f}% equal")
                continue
            text = (
                f"max {e['max_error_steps']:.2f} / mean {e['mean_error_steps']:.3f} output steps "
                f"(scale {e['scale']:.4g})"
                if "scale" in e
                else f"max |err| {e['max_abs_error']:.4g} / mean {e['mean_abs_error']:.4g}"
            )
            if "top1_agreement" in e:
                text += f", top-1 agreement {100 * e['top1_agreement']:.0f}%"
            lines.append(f"    {name}: {text}")
    return "\n".join(lines)


def _render_list(m: dict) -> str:
    lines = [
        f"{m['model']}: 4-D tensors in graph order (pass the layer name to --outputs)",
        f"  {'stride':>6}  {'shape':<14} {'layer':<56} op",
    ]
    for f in m["features"]:
        stride = "global" if f["stride"] is None else f"{f['stride']:g}"
        mark = "*" if f["deepest_at_stride"] else " "
        lines.append(f"{mark} {stride:>6}  {_shape(list(f['shape'][1:])):<14} {f['layer']:<56} {f['op']}")
    lines.append(
        "* = the last tensor at its stride in the backbone (just before the resolution drops): "
        "a good cut point"
    )
    return "\n".join(lines)
