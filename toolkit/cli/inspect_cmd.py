"""toolkit inspect MODEL.tflite [--json] [--ops]"""

from __future__ import annotations

import argparse

from toolkit.cli.common import add_json_flag, emit

HELP = (
    "show a .tflite model's I/O, quantization, op histogram with dtypes, non-int8 ops, MACs and what a Coral "
    "Edge TPU can run of it"
)
DESCRIPTION = (
    HELP
    + """

Works on any TFLite file, ours or third-party; nothing is executed (the flatbuffer is parsed and verified:
structure, buffer ranges, shapes, quantization parameters, op inputs -- what LiteRT's loader trusts; a file that
fails is reported as broken, exit 2). --probe also loads it with LiteRT in a child process (allocate_tensors and
one invoke on zeros), so a file that would crash the runtime is reported instead of crashing anything.
The Edge TPU section: for a model compiled by edgetpu_compiler (an edgetpu-custom-op), what the TPU holds and
which ops stay on the CPU; for any other model, an offline compatibility check (which ops Coral's Edge TPU can
map, where the compiler will cut the graph, whether the parameters fit its on-chip memory).

  toolkit inspect models/detector/detector_int8.tflite
  toolkit inspect pose_detection.tflite --json | jq .op_histogram
"""
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="+", help=".tflite file(s)")
    parser.add_argument(
        "--ops", action="store_true", help="also list every op with its output shape and MACs"
    )
    parser.add_argument(
        "--probe",
        action="store_true",
        help="also load each model with LiteRT in a child process (a crash is reported, exit 2)",
    )
    add_json_flag(parser)


STATIC = "verified in Python (nothing executed; --probe also loads it in a child process)"


def _probe(model, data: bytes) -> str:
    from toolkit.fileio import sha256_bytes
    from toolkit.runtime import select_backend
    from toolkit.runtime.probe import check_loadable

    return check_loadable(model.path, sha256_bytes(data), model, select_backend(), "xnnpack", force=True)


def run(args: argparse.Namespace) -> int:
    from toolkit.inspect.analysis import analyze
    from toolkit.inspect.render import render_report
    from toolkit.runtime.tflite_file import read_model_bytes

    reports = []
    for data, model in map(read_model_bytes, args.model):
        reports.append({**analyze(model, data), "model_check": _probe(model, data) if args.probe else STATIC})
    result = reports[0] if len(reports) == 1 else reports
    emit(result, args.json, lambda r: "\n\n".join(render_report(x, args.ops) for x in reports))
    return 0
