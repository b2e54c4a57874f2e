"""``toolkit bench``: latency percentiles, memory and host fingerprint per model/threads/delegate, stored in SQLite.

``toolkit bench MODEL...`` measures; ``toolkit bench report`` renders the store. The first positional argument
picks the form (a model literally named 'report' can be given as ./report). Only argparse-level code at import
time: LiteRT, numpy and matplotlib are imported inside run().
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from toolkit.cli.common import (
    add_json_flag,
    add_task_flag,
    config_type,
)

HELP = "benchmark .tflite models: latency percentiles, memory, host fingerprint; stored for reports"
DESCRIPTION = """Benchmark .tflite models on this machine (or a remote one over SSH).

Per configuration (model x threads): load time, first invoke, then steady-state mean/std/min/p50/p90/p99/max and
throughput over timed runs, peak RSS of the process that measured it, model size and input type. Inputs are a real
sample when the model's manifest (model.json) names its kind, else seeded random data. Every result is appended to
an SQLite store with the host fingerprint (CPU, governor, temperature, Raspberry Pi throttling).

examples:
  toolkit bench detector_int8.tflite --threads 1,2,4
  toolkit bench m_fp32.tflite m_int8.tflite --seconds 5 --target laptop
  toolkit bench m_int8.tflite --remote pi@raspberrypi.local --remote-python '~/venv/bin/python'
  toolkit bench report --format md --plot latency.png       (see: toolkit bench report --help)
  toolkit bench matrix model.keras --data mnist:split=test --calib mnist:split=train,limit=400
                                                            (see: toolkit bench matrix --help)
"""
REPORT_DESCRIPTION = """Render the stored benchmark results: one table per model family (the file name without its
_fp32/_fp16/_dynamic/_int8 suffix, or the manifest's source model hash), rows per format/target/threads, with
p50/p90/p99, size, accuracy when recorded, and speed-up against the family's fp32 row on the same target."""
MATRIX_DESCRIPTION = """Export one Keras model to every format (fp32, fp16, dynamic, int8), score each on real data with
'toolkit eval' code (the Keras float model is the reference row), benchmark each with 'toolkit bench' and print ONE
table: size, primary metric and its change against Keras, p50/p90/p99 latency, peak RSS, speed-up against fp32.
Results go to the bench store with the accuracy attached ('toolkit bench report' shows them). Needs TensorFlow
(pip install 'edge-toolkit[train]') for the conversion; the .tflite files are scored and timed by the device runtime.

examples:
  toolkit bench matrix model.keras --data mnist:split=test --calib mnist:split=train,limit=400
  toolkit bench matrix model.keras --data mnist:split=test --modes fp32,fp16,dynamic --threads 1
  toolkit bench matrix model.keras --data mnist:split=test --calib calib.npy --out-dir exports/ --json
"""
SUBCOMMANDS = ("report", "matrix")
BENCH_CONFIG = "toolkit.bench.config:BenchConfig"  # the ranges of the measuring flags (BenchConfig.LIMITS)
EVAL_CONFIG = "toolkit.eval.config:EvalConfig"  # bench matrix scores with toolkit eval: --threads and --limit


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH",
                        help="results database (default: $TOOLKIT_HOME/bench.sqlite, else "
                             "~/.local/share/edge-toolkit/bench.sqlite)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL", help=".tflite files to measure")
    parser.add_argument("--threads", type=config_type(BENCH_CONFIG, "threads"), metavar="N[,N...]",
                        help="interpreter thread counts to measure, e.g. 1,2,4 (default: all usable cores)")
    parser.add_argument("--delegate", default="xnnpack", metavar="NAME|PATH.so",
                        help="xnnpack (default), none (reference kernels), edgetpu, or a delegate library path")
    parser.add_argument("--fallback", choices=["cpu"],
                        help="when the delegate (e.g. the Edge TPU) is missing, measure on the CPU instead of "
                             "exiting 3 (an _edgetpu.tflite runs as its CPU original beside it); said in the "
                             "result")
    parser.add_argument("--warmup", type=config_type(BENCH_CONFIG, "warmup"), default=10, metavar="N",
                        help="untimed invokes after the first one (default 10)")
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument("--runs", type=config_type(BENCH_CONFIG, "runs"), default=100, metavar="N",
                        help="timed invokes (default 100)")
    amount.add_argument("--seconds", type=config_type(BENCH_CONFIG, "seconds"), metavar="S",
                        help="time each configuration for S seconds")
    parser.add_argument("--target", metavar="NAME", help="name of the machine in the store (default: its hostname)")
    _add_db(parser)
    parser.add_argument("--no-store", action="store_true", help="measure and print only; do not write the store")
    parser.add_argument("--in-process", action="store_true",
                        help="measure in this process (faster start; peak RSS then covers all models so far)")
    remote = parser.add_argument_group("remote target (SSH)")
    remote.add_argument("--remote", metavar="USER@HOST[:PORT]", help="run the benchmark on this host over SSH")
    remote.add_argument("--identity", "-i", metavar="FILE", help="SSH private key")
    remote.add_argument("--remote-toolkit", metavar="CMD", help="command that runs the toolkit there (default: toolkit)")
    remote.add_argument("--remote-python", metavar="PY", help="shorthand for --remote-toolkit 'PY -m toolkit'")
    remote.add_argument("--ssh-option", action="append", default=[], metavar="KEY=VALUE",
                        help="extra ssh -o option, repeatable (e.g. UserKnownHostsFile=~/.ssh/lab_hosts)")
    remote.add_argument("--connect-timeout", type=config_type(BENCH_CONFIG, "connect_timeout"), default=10,
                        metavar="S", help="SSH connect timeout in seconds (default 10)")
    add_json_flag(parser)
    parser.epilog = ("subcommands: 'toolkit bench report --help' renders stored results; 'toolkit bench matrix "
                     "--help' exports a Keras model to every format, scores and times each.")

    report = type(parser)(prog=f"{parser.prog} report", description=REPORT_DESCRIPTION)
    _add_db(report)
    report.add_argument("--format", choices=("table", "md", "csv", "json", "html"), default="table",
                        help="output format (default table)")
    report.add_argument("--target", metavar="NAME", help="only results of this target")
    report.add_argument("--all", action="store_true", help="every stored run, not just the newest per configuration")
    report.add_argument("--plot", metavar="OUT.png", help="also write latency distributions and per-target bars")
    report.add_argument("--out", metavar="FILE", help="write the report to FILE instead of stdout")
    report.set_defaults(_run=run_report)
    matrix = type(parser)(prog=f"{parser.prog} matrix", description=MATRIX_DESCRIPTION,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_matrix_arguments(matrix)
    matrix.set_defaults(_run=run_matrix)
    _dispatch_first_positional(parser, {"report": report, "matrix": matrix})


def _add_matrix_arguments(matrix: argparse.ArgumentParser) -> None:
    matrix.add_argument("model", metavar="MODEL.keras", help="the float Keras model to export, score and time")
    matrix.add_argument("--data", required=True, metavar="SPEC", help="data scored for every row, e.g. mnist:split=test")
    matrix.add_argument("--calib", metavar="DATA",
                        help="int8 calibration data: a folder of images, a .npy/.npz or a data SPEC (required for int8)")
    matrix.add_argument("--modes", default="fp32,fp16,dynamic,int8", metavar="M[,M...]",
                        help="formats to export (default fp32,fp16,dynamic,int8)")
    matrix.add_argument("--threads", type=config_type(EVAL_CONFIG, "threads"), metavar="N",
                        help="interpreter threads for scoring and timing (default: all usable cores)")
    matrix.add_argument("--limit", type=config_type(EVAL_CONFIG, "limit"), metavar="N",
                        help="score at most N samples of --data")
    matrix.add_argument("--runs", type=config_type(BENCH_CONFIG, "runs"), default=100, metavar="N",
                        help="timed invokes (default 100)")
    matrix.add_argument("--warmup", type=config_type(BENCH_CONFIG, "warmup"), default=10, metavar="N",
                        help="untimed invokes before timing (default 10)")
    matrix.add_argument("--seed", type=config_type(BENCH_CONFIG, "seed"), default=0,
                        help="calibration sampling and random inputs (default 0)")
    matrix.add_argument("--trust-model", action="store_true",
                        help="load a .keras file with unsafe deserialization (Lambda layers run Python code); only for "
                             "files you trust (as toolkit convert --trust-model)")
    add_task_flag(matrix)
    matrix.add_argument("--out-dir", metavar="DIR", help="write the converted models here and keep them "
                                                         "(default: a temporary folder, deleted unless --keep)")
    matrix.add_argument("--keep", action="store_true", help="keep the temporary folder of converted models")
    matrix.add_argument("--target", metavar="NAME", help="name of this machine in the store (default: its hostname)")
    _add_db(matrix)
    matrix.add_argument("--no-store", action="store_true", help="print only; do not write the store")
    add_json_flag(matrix)


def _dispatch_first_positional(parser: argparse.ArgumentParser, subs: dict[str, argparse.ArgumentParser]) -> None:
    """Route 'toolkit bench report ...' to its own parser; anything else is 'toolkit bench MODEL...'.

    argparse has no optional sub-subcommand, so this parser's parse_known_args is wrapped: when the first argument
    names a subcommand, that sub-parser parses the rest (with its own --help and errors).
    """
    original = parser.parse_known_args

    def parse_known_args(args: Any = None, namespace: Any = None) -> Any:
        items = list(sys.argv[1:] if args is None else args)
        if items and items[0] in subs:
            return subs[items[0]].parse_known_args(items[1:], namespace)
        return original(items, namespace)

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]


def run(args: argparse.Namespace) -> int:
    from toolkit.bench.commands import run_bench

    return run_bench(args)


def run_report(args: argparse.Namespace) -> int:
    from toolkit.bench.commands import run_report as report

    return report(args)


def run_matrix(args: argparse.Namespace) -> int:
    from toolkit.bench.matrix import run_command
    from toolkit.cli.common import check_folder_writable

    check_folder_writable(args.out_dir, "--out-dir")
    return run_command(args)
