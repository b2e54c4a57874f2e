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
  toolkit bench pipeline                                    the camera demo end to end: FPS, stage times
  toolkit bench pipeline --soak                             ... or its memory over 10,000 frames
                                                            (see: toolkit bench pipeline --help)
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
PIPELINE_DESCRIPTION = """End-to-end speed of the camera demo (toolkit demo's own code, headless, unpaced: nothing is
dropped): FPS, per-stage p50/p90, drops, CPU per frame, and efficiency against what the models alone allow, one
row per run; or, with --soak, whether its resident memory creeps over a long run (exit 4 when the slope is above
--threshold-mb). Writes JSON (--out) and prints one line per run.

Default sources: the shared real clip ($TOOLKIT_SHARED/data/pedestrian_video/pedestrians.avi) to its end and 300
frames of the synthetic scene; the default configuration first, then any --threads / --modes sweep.

examples:
  toolkit bench pipeline
  toolkit bench pipeline --threads 1,2 --modes pipelined,serial --repeats 3
  toolkit bench pipeline --source synthetic --frames 100 --isolated-runs 0 --json
  toolkit bench pipeline --soak                             10,000 synthetic frames, RSS slope per 1000 frames
  toolkit bench pipeline --soak --frames 2000 --every 100 --warmup 500 --no-record
"""
SUBCOMMANDS = ("report", "matrix", "pipeline")
PIPELINE_BENCH = "toolkit.bench.pipeline_bench:PipelineBenchConfig"  # ranges of the speed flags
SOAK = "toolkit.bench.pipeline_soak:SoakConfig"  # ranges of the --soak flags
BENCH_CONFIG = "toolkit.bench.config:BenchConfig"  # the ranges of the measuring flags (BenchConfig.LIMITS)
EVAL_CONFIG = "toolkit.eval.config:EvalConfig"  # bench matrix scores with toolkit eval: --threads and --limit


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="PATH",
        help="results database (default: $TOOLKIT_HOME/bench.sqlite, else "
        "~/.local/share/edge-toolkit/bench.sqlite)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL", help=".tflite files to measure")
    parser.add_argument(
        "--threads",
        type=config_type(BENCH_CONFIG, "threads"),
        metavar="N[,N...]",
        help="interpreter thread counts to measure, e.g. 1,2,4 (default: all usable cores)",
    )
    parser.add_argument(
        "--delegate",
        default="xnnpack",
        metavar="NAME|PATH.so",
        help="xnnpack (default), none (reference kernels), edgetpu, or a delegate library path",
    )
    parser.add_argument(
        "--fallback",
        choices=["cpu"],
        help="when the delegate (e.g. the Edge TPU) is missing, measure on the CPU instead of "
        "exiting 3 (an _edgetpu.tflite runs as its CPU original beside it); said in the "
        "result",
    )
    parser.add_argument(
        "--warmup",
        type=config_type(BENCH_CONFIG, "warmup"),
        default=10,
        metavar="N",
        help="untimed invokes after the first one (default 10)",
    )
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument(
        "--runs",
        type=config_type(BENCH_CONFIG, "runs"),
        default=100,
        metavar="N",
        help="timed invokes (default 100)",
    )
    amount.add_argument(
        "--seconds",
        type=config_type(BENCH_CONFIG, "seconds"),
        metavar="S",
        help="time each configuration for S seconds",
    )
    parser.add_argument(
        "--target", metavar="NAME", help="name of the machine in the store (default: its hostname)"
    )
    _add_db(parser)
    parser.add_argument(
        "--no-store", action="store_true", help="measure and print only; do not write the store"
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="measure in this process (faster start; peak RSS then covers all models so far)",
    )
    remote = parser.add_argument_group("remote target (SSH)")
    remote.add_argument(
        "--remote", metavar="USER@HOST[:PORT]", help="run the benchmark on this host over SSH"
    )
    remote.add_argument("--identity", "-i", metavar="FILE", help="SSH private key")
    remote.add_argument(
        "--remote-toolkit", metavar="CMD", help="command that runs the toolkit there (default: toolkit)"
    )
    remote.add_argument(
        "--remote-python", metavar="PY", help="shorthand for --remote-toolkit 'PY -m toolkit'"
    )
    remote.add_argument(
        "--ssh-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra ssh -o option, repeatable (e.g. UserKnownHostsFile=~/.ssh/lab_hosts)",
    )
    remote.add_argument(
        "--connect-timeout",
        type=config_type(BENCH_CONFIG, "connect_timeout"),
        default=10,
        metavar="S",
        help="SSH connect timeout in seconds (default 10)",
    )
    add_json_flag(parser)
    parser.epilog = (
        "subcommands: 'toolkit bench report --help' renders stored results; 'toolkit bench matrix "
        "--help' exports a Keras model to every format, scores and times each; 'toolkit bench pipeline "
        "--help' measures the camera demo end to end."
    )

    report = type(parser)(prog=f"{parser.prog} report", description=REPORT_DESCRIPTION)
    _add_db(report)
    report.add_argument(
        "--format",
        choices=("table", "md", "csv", "json", "html"),
        default="table",
        help="output format (default table)",
    )
    report.add_argument("--target", metavar="NAME", help="only results of this target")
    report.add_argument(
        "--all", action="store_true", help="every stored run, not just the newest per configuration"
    )
    report.add_argument(
        "--plot", metavar="OUT.png", help="also write latency distributions and per-target bars"
    )
    report.add_argument("--out", metavar="FILE", help="write the report to FILE instead of stdout")
    report.set_defaults(_run=run_report)
    matrix = type(parser)(
        prog=f"{parser.prog} matrix",
        description=MATRIX_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_matrix_arguments(matrix)
    matrix.set_defaults(_run=run_matrix)
    pipeline = type(parser)(
        prog=f"{parser.prog} pipeline",
        description=PIPELINE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_pipeline_arguments(pipeline)
    pipeline.set_defaults(_run=run_pipeline)
    _dispatch_first_positional(parser, {"report": report, "matrix": matrix, "pipeline": pipeline})


def _add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--soak", action="store_true", help="memory soak instead of the speed runs")
    parser.add_argument("--models", metavar="DIR", help="model folder (default: the shipped zoo)")
    parser.add_argument(
        "--source",
        action="append",
        metavar="SPEC",
        help="demo source: a video file, synthetic[:...], a camera (repeatable; default: the shared "
        "clip and synthetic; --soak: synthetic)",
    )
    parser.add_argument(
        "--frames",
        type=config_type(PIPELINE_BENCH, "frames"),
        metavar="N",
        help="frames per run (default: a file to its end, 300 of anything else; --soak: 10000)",
    )
    parser.add_argument(
        "--every-n-seg",
        type=config_type(PIPELINE_BENCH, "every_n_seg"),
        default=3,
        metavar="N",
        help="segment every N-th frame, as the demo (default 3)",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="JSON output (default build/bench/bench_pipeline.json; --soak: build/bench/soak_pipeline.json)",
    )
    add_json_flag(parser)
    speed = parser.add_argument_group("speed runs")
    speed.add_argument(
        "--threads",
        type=config_type(PIPELINE_BENCH, "threads"),
        metavar="N[,N...]",
        help="interpreter threads to sweep besides the default configuration, e.g. 1,2",
    )
    speed.add_argument("--modes", metavar="M[,M...]", help="modes to sweep: pipelined,serial")
    speed.add_argument(
        "--repeats",
        type=config_type(PIPELINE_BENCH, "repeats"),
        metavar="N",
        help="runs per configuration, not merged (default 1)",
    )
    speed.add_argument(
        "--oracle",
        action="store_true",
        help="synthetic runs track the scene's true boxes (the detector still runs): tracking and "
        "behaviour at real crowd sizes even with untrained models",
    )
    speed.add_argument(
        "--isolated-runs",
        type=config_type(PIPELINE_BENCH, "isolated_runs"),
        metavar="N",
        help="invokes per model for the isolated-latency bound (default 200; 0 skips it)",
    )
    soak = parser.add_argument_group("memory soak (--soak)")
    soak.add_argument(
        "--every",
        type=config_type(SOAK, "every"),
        metavar="N",
        help="sample RSS every N frames (default 250)",
    )
    soak.add_argument(
        "--warmup",
        type=config_type(SOAK, "warmup"),
        metavar="N",
        help="frames left out of the fit (default 1000)",
    )
    soak.add_argument(
        "--threshold-mb",
        type=config_type(SOAK, "threshold_mb"),
        metavar="X",
        help="largest passing slope, MB per 1000 frames (default 0.25)",
    )
    soak.add_argument("--no-record", action="store_true", help="leave the video recording out of the loop")


def _add_matrix_arguments(matrix: argparse.ArgumentParser) -> None:
    matrix.add_argument(
        "model", metavar="MODEL.keras", help="the float Keras model to export, score and time"
    )
    matrix.add_argument(
        "--data", required=True, metavar="SPEC", help="data scored for every row, e.g. mnist:split=test"
    )
    matrix.add_argument(
        "--calib",
        metavar="DATA",
        help="int8 calibration data: a folder of images, a .npy/.npz or a data SPEC (required for int8)",
    )
    matrix.add_argument(
        "--modes",
        default="fp32,fp16,dynamic,int8",
        metavar="M[,M...]",
        help="formats to export (default fp32,fp16,dynamic,int8)",
    )
    matrix.add_argument(
        "--threads",
        type=config_type(EVAL_CONFIG, "threads"),
        metavar="N",
        help="interpreter threads for scoring and timing (default: all usable cores)",
    )
    matrix.add_argument(
        "--limit",
        type=config_type(EVAL_CONFIG, "limit"),
        metavar="N",
        help="score at most N samples of --data",
    )
    matrix.add_argument(
        "--runs",
        type=config_type(BENCH_CONFIG, "runs"),
        default=100,
        metavar="N",
        help="timed invokes (default 100)",
    )
    matrix.add_argument(
        "--warmup",
        type=config_type(BENCH_CONFIG, "warmup"),
        default=10,
        metavar="N",
        help="untimed invokes before timing (default 10)",
    )
    matrix.add_argument(
        "--seed",
        type=config_type(BENCH_CONFIG, "seed"),
        default=0,
        help="calibration sampling and random inputs (default 0)",
    )
    matrix.add_argument(
        "--trust-model",
        action="store_true",
        help="load a .keras file with unsafe deserialization (Lambda layers run Python code); only for "
        "files you trust (as toolkit convert --trust-model)",
    )
    add_task_flag(matrix)
    matrix.add_argument(
        "--out-dir",
        metavar="DIR",
        help="write the converted models here and keep them "
        "(default: a temporary folder, deleted unless --keep)",
    )
    matrix.add_argument("--keep", action="store_true", help="keep the temporary folder of converted models")
    matrix.add_argument(
        "--target", metavar="NAME", help="name of this machine in the store (default: its hostname)"
    )
    _add_db(matrix)
    matrix.add_argument("--no-store", action="store_true", help="print only; do not write the store")
    add_json_flag(matrix)


def _dispatch_first_positional(
    parser: argparse.ArgumentParser, subs: dict[str, argparse.ArgumentParser]
) -> None:
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


SPEED_FLAGS = ("threads", "modes", "repeats", "oracle", "isolated_runs")
SOAK_FLAGS = ("every", "warmup", "threshold_mb", "no_record")


def run_pipeline(args: argparse.Namespace) -> int:
    from toolkit.errors import QualityGateFailed, UsageError
    from toolkit.fileio import check_writable, write_json_atomic

    wrong = [
        name
        for name in (SPEED_FLAGS if args.soak else SOAK_FLAGS)
        if getattr(args, name) not in (None, False)
    ]
    if wrong:
        flag = "--" + wrong[0].replace("_", "-")
        raise UsageError(f"{flag} applies to {'the speed runs, not --soak' if args.soak else '--soak'}")
    out = args.out or f"build/bench/{'soak' if args.soak else 'bench'}_pipeline.json"
    check_writable(out, "--out")  # before minutes of running
    if args.soak:
        from toolkit.bench.pipeline_soak import SoakConfig, render, soak_pipeline

        if args.source and len(args.source) > 1:
            raise UsageError("--soak runs one --source")
        given = {
            "frames": args.frames,
            "every": args.every,
            "warmup": args.warmup,
            "source": (args.source or [None])[0],
            "threshold_mb": args.threshold_mb,
        }
        config = SoakConfig(
            models=args.models,
            every_n_seg=args.every_n_seg,
            record=not args.no_record,
            **{k: v for k, v in given.items() if v is not None},
        )
        result = soak_pipeline(config, say=_say)
    else:
        from toolkit.bench.pipeline_bench import PipelineBenchConfig, bench_pipeline, render

        modes = tuple(m.strip() for m in args.modes.split(",")) if args.modes else ()
        given = {"repeats": args.repeats, "isolated_runs": args.isolated_runs}
        config = PipelineBenchConfig(
            models=args.models,
            sources=tuple(args.source or ()),
            frames=args.frames,
            threads=tuple(args.threads or ()),
            modes=modes,
            every_n_seg=args.every_n_seg,
            oracle=args.oracle,
            **{k: v for k, v in given.items() if v is not None},
        )
        result = bench_pipeline(config, say=_say)
    write_json_atomic(out, result)
    if args.json:
        import json

        print(json.dumps(result, indent=2))
    else:
        print(f"{render(result)}\nwrote {out}")
    if args.soak and not result["passed"]:
        raise QualityGateFailed(
            f"memory grew {result['slope_mb_per_1000_frames']:+.4f} MB per 1000 frames, above "
            f"--threshold-mb {config.threshold_mb}; {out} holds the samples"
        )
    return 0


def _say(text: str) -> None:
    """Progress lines go to an interactive stderr only: on a pipe, stderr stays empty or one error line."""
    if sys.stderr.isatty():
        print(text, file=sys.stderr, flush=True)


def run_matrix(args: argparse.Namespace) -> int:
    from toolkit.bench.matrix import run_command
    from toolkit.cli.common import StatusLine, check_folder_writable

    check_folder_writable(args.out_dir, "--out-dir")
    with StatusLine("bench matrix") as status:
        text = run_command(args, say=status.show)
    print(text)
    return 0
