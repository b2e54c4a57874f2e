"""toolkit eval MODEL --data SPEC [--json]; toolkit eval [MODELS] --data mot:seq=DIR (tracking)"""

from __future__ import annotations

import argparse
from typing import Any

from toolkit.cli.common import (
    StatusLine,
    add_json_flag,
    add_task_flag,
    check_folder_writable,
    config_type,
    emit,
)

EVAL_CONFIG = "toolkit.eval.config:EvalConfig"  # the ranges of --limit, --threads and --seed

HELP = "score a .keras or .tflite model on real data with the same metric code (baselines beside it)"
DESCRIPTION = (
    HELP
    + """

  toolkit eval models/mnist_classifier/classifier_int8.tflite --data mnist:split=test
  toolkit eval behaviour.keras --data eth_ucy:scene=all,split=test
  toolkit eval detector_int8.tflite --data coco128:split=val,fold=0
  toolkit eval --data mot                      # the pipeline's tracks on the shared PETS09-S2L1 (zoo models)
  toolkit eval my_models/ --data mot:seq=MOT17-02,video=clip.mp4   # MOTA, IDF1, HOTA, AP50 of track boxes
  toolkit eval behaviour_int8.tflite --data mot  # a behaviour model: ADE/FDE on PETS09-S2L1's world tracks

Data SPECs (NAME[:key=value,...] or a path):
"""
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from toolkit.data.spec import specs_help

    parser.description = DESCRIPTION + specs_help()
    parser.add_argument(
        "model",
        nargs="?",
        help=".keras or .tflite model; for --data mot: a detector .tflite or a "
        "model folder (default: the shipped zoo)",
    )
    parser.add_argument("--data", required=True, help="data SPEC, e.g. mnist:split=test")
    parser.add_argument("--limit", type=config_type(EVAL_CONFIG, "limit"), help="score at most N samples")
    parser.add_argument(
        "--threads",
        type=config_type(EVAL_CONFIG, "threads"),
        help="interpreter threads for .tflite (default: all cores)",
    )
    parser.add_argument("--part", help="a named sub-model of a .keras file (e.g. decoder)")
    add_task_flag(parser)
    parser.add_argument("--companion", help="a second model some kinds need (e.g. the VAE decoder .tflite)")
    parser.add_argument("--out-dir", help="where artifacts such as sample grids are written")
    parser.add_argument(
        "--no-baselines", action="store_true", help="skip baseline rows (HOG, constant velocity)"
    )
    parser.add_argument(
        "--seed", type=config_type(EVAL_CONFIG, "seed"), default=0, help="seed for any sampling (default 0)"
    )
    parser.add_argument(
        "--trust-model",
        action="store_true",
        help="load a .keras file with unsafe deserialization (Lambda layers run Python code) or a "
        "SavedModel directory; only for files you trust (as toolkit convert --trust-model)",
    )
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from toolkit.data.spec import parse_spec
    from toolkit.errors import UsageError
    from toolkit.eval import EvalConfig, evaluate

    config = EvalConfig(
        limit=args.limit,
        threads=args.threads,
        out_dir=args.out_dir,
        seed=args.seed,
        baselines=not args.no_baselines,
        part=args.part,
        companion=args.companion,
        task=args.task,
        trust_model=args.trust_model,
    )
    check_folder_writable(args.out_dir, "--out-dir")  # before any scoring: not after minutes of work
    spec = parse_spec(args.data)
    with StatusLine("eval") as status:
        if spec.name == "mot" and not _behaviour_model(args.model):
            from toolkit.eval.tracking import evaluate_sequence

            status.show(f"tracking {spec} with {args.model or 'the shipped zoo'}")
            report = evaluate_sequence(args.model, spec, config)
        else:
            if not args.model:
                raise UsageError(
                    f"--data {args.data}: give the model to score (toolkit eval MODEL --data ...); only "
                    "tracking data (--data mot:...) defaults to the shipped zoo"
                )
            status.show(f"scoring {args.model} on {args.data}")
            report = evaluate(args.model, spec, config)
    emit(report.to_dict(), args.json, render)
    return 0


def _behaviour_model(model: str | None) -> bool:
    """True for a behaviour model: with --data mot it is scored on the sequence's world trajectories, not tracks.

    A .keras file is never a tracking detector (those are .tflite); a .tflite says its kind in its manifest or
    signature names. Anything else (a folder, an unreadable file) goes to tracking, which reports it.
    """
    from pathlib import Path

    from toolkit.errors import UsageError
    from toolkit.pipeline.model_files import model_kind

    path = Path(model) if model else None
    if path is None or not path.is_file():
        return False
    if path.suffix == ".keras":
        return True
    try:
        return path.suffix == ".tflite" and model_kind(path) == "behaviour"
    except UsageError:
        return False


def render(report: dict[str, Any]) -> str:
    lines = [
        f"{report['model']} ({report['kind']}, {report['model_format']}) on {report['data']}: "
        f"{report['samples']} samples, {report['seconds']:.1f}s"
    ]
    for name, value in report["metrics"].items():
        mark = "  <- primary" if name == report["primary"] else ""
        lines.append(
            f"  {name:<28} {value:.4f}{mark}" if isinstance(value, float) else f"  {name:<28} {value}{mark}"
        )
    for title, rows in report["tables"].items():
        if not rows:
            continue
        lines.append(f"  {title}:")
        cols = list(rows[0])
        lines.append("    " + "  ".join(f"{c:>12}" for c in cols))
        for row in rows:
            lines.append("    " + "  ".join(_cell(row.get(c)) for c in cols))
    for note in report["notes"]:
        lines.append(f"  note: {note}")
    for name, path in report["artifacts"].items():
        lines.append(f"  wrote {name}: {path}")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:>12.4f}"
    return f"{str(value):>12}"
