"""The ``toolkit`` command line: one parser, one module per subcommand, one place that maps errors to exit codes.

Subcommand modules only import argparse-level code at import time; heavy libraries (TensorFlow, LiteRT, OpenCV)
are imported inside ``run()``, so ``toolkit --help`` and ``toolkit X --help`` stay fast and TensorFlow-free.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from toolkit import __version__
from toolkit.errors import EXIT_FAILURE, EXIT_USAGE, ToolkitError, one_line
from toolkit.pipeline.redact import redact_url  # the last guard: no error line shows a stream password

# (subcommand, module under toolkit.cli). Order is the order shown in --help: the pipeline's order.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("train", "train_cmd"),
    ("convert", "convert_cmd"),
    ("quant-report", "quant_report_cmd"),
    ("import", "import_cmd"),
    ("inspect", "inspect_cmd"),
    ("eval", "eval_cmd"),
    ("bench", "bench_cmd"),
    ("demo", "demo_cmd"),
    ("ground", "ground_cmd"),
    ("doctor", "doctor_cmd"),
    ("zoo", "zoo_cmd"),
)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (and exit 2) instead of usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        text = one_line(redact_url(message))
        self.exit(EXIT_USAGE, f"{self.prog}: error: {text} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="toolkit",
        description="Keras -> int8 TFLite -> edge devices: convert, inspect, evaluate, benchmark and run.",
        epilog="Exit codes: 0 ok, 1 runtime failure, 2 bad usage or input, 3 device/accelerator unavailable, "
        "4 a quality gate failed (output written, marked failed), 130 interrupted (Ctrl-C; demo stops cleanly with 0 "
        "on the first, 130 on a second).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name, module_name in COMMANDS:
        module = _command_module(name, module_name)
        cmd = sub.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def _command_module(name: str, module_name: str) -> ModuleType:
    """The module of a listed command. A missing one is a packaging defect (a file left out of the wheel, a stale
    install), never a command to skip quietly: it fails every invocation, naming the module."""
    try:
        return importlib.import_module(f"toolkit.cli.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"toolkit.cli.{module_name}":
            raise
        raise RuntimeError(
            f"toolkit: the '{name}' command's module toolkit.cli.{module_name} is missing from this "
            "install (a packaging defect: reinstall edge-toolkit, or restore the file in a "
            "checkout)"
        ) from exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_USAGE
    debug = args.debug or os.environ.get("TOOLKIT_DEBUG") == "1"
    try:
        code = args._run(args)
        return int(code or 0)
    except ToolkitError as exc:
        if debug:
            raise
        print(f"toolkit {args.command}: error: {one_line(redact_url(str(exc)))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"toolkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # an unexpected failure: still one line; --debug shows the traceback
        if debug:
            raise
        text = one_line(redact_url(str(exc)), 300)
        print(
            f"toolkit {args.command}: internal error: {type(exc).__name__}: {text} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
