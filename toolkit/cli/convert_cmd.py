"""toolkit convert MODEL -o OUT.tflite --quantize {fp32,fp16,dynamic,int8} [--calib DATA]"""

from __future__ import annotations

import argparse
from pathlib import Path

from toolkit.capabilities import IO_TYPES, QUANT_MODES
from toolkit.cli.common import (
    StatusLine,
    add_json_flag,
    add_task_flag,
    add_verbose_flag,
    apply_verbose,
    emit,
    non_negative_int,
    positive_int,
)

HELP = "convert a Keras model to .tflite (fp32, fp16, dynamic or full int8) with a provenance manifest"
DESCRIPTION = (
    HELP
    + """

  toolkit convert model.keras -o model_int8.tflite --quantize int8 --calib images/
  toolkit convert model.keras -o model_fp16.tflite --quantize fp16
  toolkit convert vae.keras --part decoder -o decoder_int8.tflite --calib z_samples.npy
  toolkit convert det.keras -o det_int8.tflite --calib images/ --target edgetpu --io uint8
  toolkit convert behaviour.keras -o behaviour_int8.tflite --calib eth_ucy:scene=all,split=train --batch 8

--batch N: every input and output gets a fixed first dimension N (default 1), so one invoke runs N samples --
the behaviour stage runs all of a frame's tracks (up to N) in one call, padding the rest. LiteRT cannot resize
the batch of a converted int8 model: choose N when converting. Calibration and the parity check feed N-row
batches (the last one filled up with the first samples again). The camera pipeline's image models run one frame
at a time and refuse a batch > 1; --target edgetpu and --qat take batch 1 only.

--target edgetpu: full int8 (int8 or uint8 I/O, batch 1, static shapes) plus an offline Edge TPU report in the
manifest and on screen: which ops Coral's Edge TPU maps, where the compiler will cut the graph (the first op it
cannot map; everything after runs on the CPU), whether the parameters fit its ~8 MB on-chip memory, and the fix.
When edgetpu_compiler is on PATH it is run too: OUT_edgetpu.tflite and its log land beside OUT.tflite, and the
manifest holds what the compiler reported (ops mapped, on-/off-chip memory).

Writes OUT.tflite and OUT.json (sha256 of input and output, versions, calibration hash and count, I/O quantization,
op histogram, parity against the Keras model on held-back samples). Nothing is written if any step fails.
Modes: """
    + "; ".join(f"{m.name}: {m.summary}" for m in QUANT_MODES.values())
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help=".keras file (or a SavedModel directory with --trust-model)")
    parser.add_argument(
        "-o", "--output", required=True, help="output .tflite path (manifest written beside it)"
    )
    parser.add_argument(
        "--quantize", default="int8", choices=list(QUANT_MODES), help="quantization mode (default int8)"
    )
    parser.add_argument(
        "--calib", help="calibration data for int8: a folder of images or a .npy/.npz of inputs"
    )
    parser.add_argument(
        "--calib-samples", type=positive_int, default=200, help="samples used to calibrate (default 200)"
    )
    parser.add_argument(
        "--parity-samples",
        type=non_negative_int,
        default=16,
        help="samples held back from calibration for the parity check (default 16)",
    )
    parser.add_argument(
        "--calib-resize",
        choices=["auto", "stretch", "letterbox"],
        default="auto",
        help="how calibration images are fitted to the input (default auto: letterbox for "
        "detectors and segmenters, as the camera pipeline feeds them; stretch otherwise)",
    )
    parser.add_argument(
        "--io", choices=list(IO_TYPES), default=None, help="input/output type of an int8 model (default int8)"
    )
    parser.add_argument("--part", help="convert this named sub-model (e.g. encoder / decoder of a VAE)")
    parser.add_argument(
        "--trust-model",
        action="store_true",
        help="allow SavedModel directories and Lambda layers (runs code from the model file)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for sampling calibration data (default 0)")
    parser.add_argument(
        "--eval",
        metavar="DATA",
        dest="eval_data",
        help="accuracy gate: score the float and the converted model on DATA (toolkit eval's code, "
        "the same samples); exit 4 when the drop exceeds --max-drop (the output stays, marked "
        "failed in the manifest)",
    )
    parser.add_argument(
        "--max-drop",
        type=float,
        metavar="X",
        help="largest allowed drop of the kind's headline metric (defaults: classifier top-1 0.01, "
        "detector AP50 0.02, segmenter person IoU 0.02, autoencoder AUROC 0.01, behaviour ADE "
        "0.02 m, VAE 2 nats)",
    )
    parser.add_argument(
        "--keep-float",
        action="append",
        default=[],
        metavar="REGEX",
        help="int8: keep layers whose name (or tensor name, see toolkit quant-report) matches REGEX "
        "in float; repeatable",
    )
    parser.add_argument(
        "--auto-keep-float",
        action="store_true",
        help="with --eval: keep the worst int8 layers in float, one at a time, until the drop is "
        "within --max-drop; prints each step's metric and latency",
    )
    parser.add_argument(
        "--backend",
        choices=["tflite", "aeq"],
        default="tflite",
        help="int8 by the classic TFLite converter (default; what the Edge TPU compiler expects) or "
        "by ai-edge-quantizer (static int8 from the same calibration samples)",
    )
    parser.add_argument(
        "--qat",
        type=positive_int,
        metavar="EPOCHS",
        help="quantization-aware training: fine-tune EPOCHS epochs on --train-data with tfmot (a "
        "tf_keras build of the same architecture, from MODEL.train.json) and convert to full "
        "int8; classifier and autoencoder models (not the behaviour Transformer: its QAT model does not "
        "convert)",
    )
    parser.add_argument(
        "--train-data", metavar="SPEC", help="training data for --qat (e.g. mnist:split=train)"
    )
    add_task_flag(parser)
    parser.add_argument(
        "--eval-limit",
        type=positive_int,
        metavar="N",
        help="score at most N samples in the gate (default: the whole split)",
    )
    parser.add_argument(
        "--target",
        choices=["cpu", "edgetpu"],
        default="cpu",
        help="edgetpu: check (and, with edgetpu_compiler on PATH, compile) for the Coral Edge TPU",
    )
    parser.add_argument(
        "--batch",
        type=positive_int,
        default=1,
        metavar="N",
        help="fixed batch of every input and output (default 1): one invoke runs N samples (e.g. the "
        "behaviour stage's tracks of a frame); 1..1024",
    )
    add_verbose_flag(parser)
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    apply_verbose(args)
    from toolkit.convert import ConvertConfig, convert
    from toolkit.errors import UsageError

    if args.io is not None and args.quantize != "int8":
        raise UsageError(f"--io {args.io} applies to --quantize int8 only (other modes keep float32 I/O)")
    config = ConvertConfig(
        quantize=args.quantize,
        io=args.io or "int8",
        calib=args.calib,
        calib_samples=args.calib_samples,
        parity_samples=args.parity_samples,
        calib_resize=args.calib_resize,
        part=args.part,
        trust_model=args.trust_model,
        seed=args.seed,
        target=args.target,
        task=args.task,
        keep_float=tuple(args.keep_float),
        backend=args.backend,
        batch=args.batch,
    )
    if args.max_drop is not None and not args.eval_data:
        raise UsageError("--max-drop needs --eval DATA (the data the float and int8 models are scored on)")
    if args.max_drop is not None and not 0 <= args.max_drop < float("inf"):
        raise UsageError(f"--max-drop must be a finite number >= 0, got {args.max_drop}")
    if args.auto_keep_float and (not args.eval_data or args.keep_float):
        raise UsageError(
            "--auto-keep-float needs --eval DATA (it stops when the drop is within --max-drop) and "
            "chooses the layers itself (no --keep-float)"
        )
    if args.eval_data:
        from toolkit.eval.gate import check_gate

        check_gate(args.model, args.eval_data, args.task)  # before anything is written
    with StatusLine("convert") as status:
        gate = None
        if args.auto_keep_float:
            from toolkit.eval.auto_float import auto_keep_float
            from toolkit.fileio import write_json_atomic

            result, gate, steps = auto_keep_float(
                Path(args.model),
                Path(args.output),
                config,
                args.eval_data,
                args.max_drop,
                args.eval_limit,
                args.task,
                status.show,
            )
            result.manifest["accuracy_gate"] = gate.as_dict()
            result.manifest["auto_keep_float"] = steps
            result.manifest["status"] = "ok" if gate.passed else "failed: accuracy gate"
            write_json_atomic(result.manifest_path, result.manifest)
        else:
            qat = None
            if args.qat:
                from toolkit.convert.qat import QatConfig

                if not args.train_data:
                    raise UsageError("--qat needs --train-data SPEC (the data it fine-tunes on)")
                qat = QatConfig(epochs=args.qat, train_data=args.train_data)
            elif args.train_data:
                raise UsageError("--train-data applies to --qat EPOCHS")
            result = convert(Path(args.model), Path(args.output), config, progress=status.show, qat=qat)
        if args.eval_data and not args.auto_keep_float:
            from toolkit.eval.gate import accuracy_gate
            from toolkit.fileio import write_json_atomic

            status.show(f"accuracy gate: scoring float and converted models on {args.eval_data}")
            gate = accuracy_gate(
                args.model, result.tflite_path, args.eval_data, args.max_drop, args.eval_limit, task=args.task
            )
            result.manifest["accuracy_gate"] = gate.as_dict()
            result.manifest["status"] = "ok" if gate.passed else "failed: accuracy gate"
            write_json_atomic(result.manifest_path, result.manifest)
    emit(result.manifest, args.json, _render)
    if gate is not None and not gate.passed:
        from toolkit.errors import QualityGateFailed

        raise QualityGateFailed(
            f"{gate.line()}; {result.tflite_path} is kept and marked failed in its manifest "
            "(calibrate with more representative --calib data; toolkit inspect shows float islands)"
        )
    return 0


def _render(m: dict) -> str:
    lines = [
        f"wrote {m['output']['path']} ({m['output']['size_bytes'] / 1024:.1f} KiB, {m['mode']}, "
        f"precision {m['precision']}) and its manifest"
    ]
    if m.get("batch", 1) != 1:
        lines.append(f"  fixed batch {m['batch']}: one invoke runs {m['batch']} samples (pad the last rows)")
    for t in m["inputs"] + m["outputs"]:
        q = t["quantization"]
        qtext = f" scale={q['scale']:.6g} zp={q['zero_point']}" if q and "scale" in q else ""
        lines.append(f"  {t['signature_name']:<16} {str(t['shape']):<18} {t['dtype']}{qtext}")
    for warning in (m.get("calibration") or {}).get("warnings", []):
        lines.append(f"  warning: {warning}")
    parity = m["parity"]
    lines.append(f"  parity vs Keras on {parity['samples']} {parity['inputs']}:")
    for name, e in parity["outputs"].items():
        lines.append(
            f"    {name:<16} max |err| {e['max_abs_error']:.4g}  mean |err| {e['mean_abs_error']:.4g}  "
            f"(Keras range {e['keras_output_range'][0]:.3g}..{e['keras_output_range'][1]:.3g})"
        )
    undocumented = [e for e in m["non_int8_ops"] if not e["documented"]]
    if m["mode"] == "int8" and undocumented:
        lines.append(
            "  warning: not fully int8: "
            + ", ".join(f"{e['op']} {e['dtype']} x{e['count']}" for e in undocumented)
        )
    if "edgetpu" in m:
        lines.extend(_render_edgetpu(m["edgetpu"]))
    if m.get("qat"):
        q = m["qat"]
        lines.append(
            f"  quantization-aware training: {q['epochs']} epoch(s) on {q['samples']} samples of "
            f"{q['train_data']}, loss {q['loss'][0]:.4f} -> {q['loss'][-1]:.4f}"
        )
    if m.get("kept_float"):
        lines.append(f"  kept in float: {', '.join(m['kept_float'])}")
    for step in m.get("auto_keep_float", []):
        kept = ", ".join(step["kept_float"]) or "nothing (plain int8)"
        lines.append(
            f"  auto-keep-float: {kept}: {step['metric']} {step['converted']:.4f} (drop {step['drop']:+.4f}), "
            f"p50 {step['p50_ms']:.3f} ms{'  <- within the limit' if step['passed'] else ''}"
        )
    if "accuracy_gate" in m:
        from toolkit.eval.gate import GateResult

        g = m["accuracy_gate"]
        lines.append(
            "  "
            + GateResult(
                g["data"],
                g["metric"],
                g["higher_is_better"],
                g["float"],
                g["converted"],
                g["drop"],
                g["max_drop"],
                g["samples"],
            ).line()
        )
    lines.append(f"next: toolkit inspect {m['output']['path']}   |   toolkit bench {m['output']['path']}")
    return "\n".join(lines)


def _render_edgetpu(e: dict) -> list[str]:
    from toolkit.inspect.render import render_edgetpu

    lines = render_edgetpu({"compiled": False, **e})
    compiler = e.get("compiler") or {}
    if not compiler.get("found"):
        lines.append(
            f"  edgetpu_compiler not on PATH, so nothing was compiled: {compiler.get('install', '')}"
        )
        return lines
    mib = 2**20
    used, off = compiler.get("on_chip_used_bytes"), compiler.get("off_chip_bytes")
    memory = (
        f"; on-chip {used / mib:.2f} MiB, streamed {off / mib:.2f} MiB"
        if used is not None and off is not None
        else ""
    )
    lines.append(
        f"  compiled by edgetpu_compiler {compiler.get('version') or '?'}: {compiler['output']} -- "
        f"{compiler.get('edgetpu_ops')} ops on the Edge TPU, {compiler.get('cpu_ops')} on the CPU{memory}"
    )
    if compiler.get("cpu_ops") is not None and compiler["cpu_ops"] != len(e["cpu_ops"]):
        lines.append(
            f"  note: the offline check predicted {len(e['cpu_ops'])} CPU ops, the compiler left "
            f"{compiler['cpu_ops']}: trust the compiler"
        )
    if compiler.get("note"):
        lines.append(f"  warning: {compiler['note']}")
    return lines
