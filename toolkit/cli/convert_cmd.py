"""toolkit convert MODEL -o OUT.tflite --quantize {fp32,fp16,dynamic,int8} [--calib DATA]"""

from __future__ import annotations

import argparse
from pathlib import Path

from toolkit.capabilities import IO_TYPES, QUANT_MODES
from toolkit.cli.common import StatusLine, add_json_flag, emit, non_negative_int, positive_int

HELP = "convert a Keras model to .tflite (fp32, fp16, dynamic or full int8) with a provenance manifest"
DESCRIPTION = HELP + """

  toolkit convert model.keras -o model_int8.tflite --quantize int8 --calib images/
  toolkit convert model.keras -o model_fp16.tflite --quantize fp16
  toolkit convert vae.keras --part decoder -o decoder_int8.tflite --calib z_samples.npy

Writes OUT.tflite and OUT.json (sha256 of input and output, versions, calibration hash and count, I/O quantization,
op histogram, parity against the Keras model on held-back samples). Nothing is written if any step fails.
Modes: """ + "; ".join(f"{m.name}: {m.summary}" for m in QUANT_MODES.values())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help=".keras file (or a SavedModel directory with --trust-model)")
    parser.add_argument("-o", "--output", required=True, help="output .tflite path (manifest written beside it)")
    parser.add_argument("--quantize", default="int8", choices=list(QUANT_MODES), help="quantization mode (default int8)")
    parser.add_argument("--calib", help="calibration data for int8: a folder of images or a .npy/.npz of inputs")
    parser.add_argument("--calib-samples", type=positive_int, default=200, help="samples used to calibrate (default 200)")
    parser.add_argument("--parity-samples", type=non_negative_int, default=16,
                        help="samples held back from calibration for the parity check (default 16)")
    parser.add_argument("--calib-resize", choices=["stretch", "letterbox"], default="stretch",
                        help="how calibration images are fitted to the input (default stretch)")
    parser.add_argument("--io", choices=list(IO_TYPES), default=None,
                        help="input/output type of an int8 model (default int8)")
    parser.add_argument("--part", help="convert this named sub-model (e.g. encoder / decoder of a VAE)")
    parser.add_argument("--trust-model", action="store_true",
                        help="allow SavedModel directories and Lambda layers (runs code from the model file)")
    parser.add_argument("--seed", type=int, default=0, help="seed for sampling calibration data (default 0)")
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from toolkit.convert import ConvertConfig, convert
    from toolkit.errors import UsageError

    if args.io is not None and args.quantize != "int8":
        raise UsageError(f"--io {args.io} applies to --quantize int8 only (other modes keep float32 I/O)")
    config = ConvertConfig(quantize=args.quantize, io=args.io or "int8", calib=args.calib,
                           calib_samples=args.calib_samples, parity_samples=args.parity_samples,
                           calib_resize=args.calib_resize, part=args.part, trust_model=args.trust_model,
                           seed=args.seed)
    with StatusLine("convert") as status:
        result = convert(Path(args.model), Path(args.output), config, progress=status.show)
    emit(result.manifest, args.json, _render)
    return 0


def _render(m: dict) -> str:
    lines = [f"wrote {m['output']['path']} ({m['output']['size_bytes'] / 1024:.1f} KiB, {m['mode']}, "
             f"precision {m['precision']}) and its manifest"]
    for t in m["inputs"] + m["outputs"]:
        q = t["quantization"]
        qtext = f" scale={q['scale']:.6g} zp={q['zero_point']}" if q and "scale" in q else ""
        lines.append(f"  {t['signature_name']:<16} {str(t['shape']):<18} {t['dtype']}{qtext}")
    parity = m["parity"]
    lines.append(f"  parity vs Keras on {parity['samples']} {parity['inputs']}:")
    for name, e in parity["outputs"].items():
        lines.append(f"    {name:<16} max |err| {e['max_abs_error']:.4g}  mean |err| {e['mean_abs_error']:.4g}  "
                     f"(Keras range {e['keras_output_range'][0]:.3g}..{e['keras_output_range'][1]:.3g})")
    undocumented = [e for e in m["non_int8_ops"] if not e["documented"]]
    if m["mode"] == "int8" and undocumented:
        lines.append("  warning: not fully int8: " + ", ".join(f"{e['op']} {e['dtype']} x{e['count']}"
                                                          for e in undocumented))
    lines.append(f"next: toolkit inspect {m['output']['path']}   |   toolkit bench {m['output']['path']}")
    return "\n".join(lines)
