"""toolkit quant-report MODEL.keras --calib DATA [--eval DATA] [-o report.md|.html|.json]"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.cli.common import (
    StatusLine,
    add_json_flag,
    add_task_flag,
    add_verbose_flag,
    apply_verbose,
    emit,
    positive_int,
)

if TYPE_CHECKING:
    from toolkit.convert.quant_report import QuantReport

HELP = "int8 error of every layer against float (TFLite's quantization debugger), worst first, with a plot"
DESCRIPTION = (
    HELP
    + """

  toolkit quant-report model.keras --calib images/
  toolkit quant-report model.keras --calib mnist:split=train,limit=400 --eval mnist:split=test -o report.html

For each quantized tensor: rmse/scale (the int8 error in quantization steps; rounding alone gives ~0.29, above 0.7
a layer is a suspect), max |err|, mean error, scale. With --eval, also the model's metric float vs int8 (the
accuracy gate's code). -o writes .md (+ a .png plot beside it), .html (plot embedded) or .json.
"""
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help=".keras file")
    parser.add_argument(
        "--calib", required=True, help="calibration data: a folder of images, .npy/.npz, or a SPEC"
    )
    parser.add_argument("--calib-samples", type=positive_int, default=200, help="samples used (default 200)")
    parser.add_argument(
        "--calib-resize",
        choices=["auto", "stretch", "letterbox"],
        default="auto",
        help="how calibration images are fitted (default auto: as the device feeds the kind)",
    )
    parser.add_argument(
        "--eval", metavar="DATA", dest="eval_data", help="also score the float and int8 models on DATA"
    )
    add_task_flag(parser)
    parser.add_argument("-o", "--output", help="write the full report: .md (+ .png), .html or .json")
    parser.add_argument("--top", type=positive_int, default=15, help="layers printed (default 15)")
    parser.add_argument("--seed", type=int, default=0, help="seed for sampling calibration data (default 0)")
    add_verbose_flag(parser)
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    apply_verbose(args)
    from toolkit.convert import ConvertConfig
    from toolkit.convert.quant_report import quant_report, render_text
    from toolkit.errors import UsageError
    from toolkit.fileio import check_writable, temp_folder

    out = Path(args.output) if args.output else None
    if out is not None and out.suffix not in (".md", ".html", ".json"):
        raise UsageError(f"-o {out}: write a .md, .html or .json report")
    check_writable(out, "-o")
    if args.eval_data:
        from toolkit.eval.gate import check_gate

        check_gate(args.model, args.eval_data, args.task)
    config = ConvertConfig(
        calib=args.calib,
        calib_samples=args.calib_samples,
        calib_resize=args.calib_resize,
        seed=args.seed,
        task=args.task,
    )
    with StatusLine("quant-report") as status:
        status.show(f"debugging the int8 layers of {args.model}")
        report = quant_report(Path(args.model), args.calib, config)
        if args.eval_data:
            from toolkit.convert import convert
            from toolkit.eval.gate import accuracy_gate

            status.show(f"scoring float and int8 on {args.eval_data}")
            with temp_folder("toolkit-quant-report") as tmp:
                int8 = Path(tmp) / f"{Path(args.model).stem}_int8.tflite"
                convert(Path(args.model), int8, config)
                report.gate = accuracy_gate(args.model, int8, args.eval_data, task=args.task).as_dict()
    if out is not None:
        try:
            _write(report, out)
        except OSError as exc:
            raise UsageError(f"-o {out}: cannot write the report ({exc.strerror or exc})") from None
    emit(
        report.as_dict(),
        args.json,
        lambda _: render_text(report, args.top) + (f"\nwrote {out}" if out is not None else ""),
    )
    return 0


def _write(report: QuantReport, out: Path) -> None:
    """The report as .json, .md (+ .png beside it) or .html (plot embedded), each file written atomically."""
    from toolkit.convert.quant_report import plot_png, render_html, render_markdown
    from toolkit.fileio import atomic_path, temp_folder

    if out.suffix == ".json":
        import json

        with atomic_path(out) as tmp_out:
            tmp_out.write_text(json.dumps(report.as_dict(), indent=2))
    elif out.suffix == ".md":
        png = out.with_suffix(".png")
        with atomic_path(png) as tmp_png:
            plot_png(report, tmp_png)
        with atomic_path(out) as tmp_out:
            tmp_out.write_text(render_markdown(report, png.name))
    else:
        with temp_folder("toolkit-quant-report") as tmp:
            png = tmp / "plot.png"
            plot_png(report, png)
            with atomic_path(out) as tmp_out:
                tmp_out.write_text(render_html(report, png))
