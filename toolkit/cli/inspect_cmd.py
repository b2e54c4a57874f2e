"""toolkit inspect MODEL.tflite [--json] [--ops]"""

from __future__ import annotations

import argparse

from toolkit.cli.common import add_json_flag, emit

HELP = ("show a .tflite model's I/O, quantization, op histogram with dtypes, non-int8 ops, MACs and what a Coral "
        "Edge TPU can run of it")
DESCRIPTION = HELP + """

Works on any TFLite file, ours or third-party; nothing is executed (the flatbuffer is parsed and verified).
The Edge TPU section: for a model compiled by edgetpu_compiler (an edgetpu-custom-op), what the TPU holds and
which ops stay on the CPU; for any other model, an offline compatibility check (which ops Coral's Edge TPU can
map, where the compiler will cut the graph, whether the parameters fit its on-chip memory).

  toolkit inspect models/detector/detector_int8.tflite
  toolkit inspect pose_detection.tflite --json | jq .op_histogram
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="+", help=".tflite file(s)")
    parser.add_argument("--ops", action="store_true", help="also list every op with its output shape and MACs")
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from toolkit.inspect.analysis import analyze
    from toolkit.inspect.render import render_report
    from toolkit.runtime.tflite_file import read_model_bytes

    reports = [analyze(model, data) for data, model in map(read_model_bytes, args.model)]
    result = reports[0] if len(reports) == 1 else reports
    emit(result, args.json, lambda r: "\n\n".join(render_report(x, args.ops) for x in reports))
    return 0
