"""Helpers shared by subcommands: typed argument parsers, result printing, progress."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from toolkit.fileio import to_jsonable


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def int_list(text: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4], each >= 1."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {text!r}")
    return values


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


TASK_HELP = ("score a model of no toolkit kind as KIND (classifier, detector, segmenter, behaviour, autoencoder, "
             "vae_encoder, vae_decoder): its inputs and outputs are matched to that kind's by position")


def add_task_flag(parser: argparse.ArgumentParser) -> None:
    """``--task KIND`` (eval, convert, quant-report, bench matrix)."""
    parser.add_argument("--task", metavar="KIND", help=TASK_HELP)


def add_verbose_flag(parser: argparse.ArgumentParser) -> None:
    """``--verbose``: TensorFlow's own logging (silenced by default); apply with :func:`apply_verbose`."""
    parser.add_argument("--verbose", action="store_true",
                        help="let TensorFlow's own logging through (silenced by default)")


def apply_verbose(args: argparse.Namespace) -> None:
    """Call first in ``run()``: keras_export reads TOOLKIT_VERBOSE when it is first imported."""
    if getattr(args, "verbose", False):
        import os

        os.environ["TOOLKIT_VERBOSE"] = "1"


def emit(result: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    """Print ``result`` as JSON or as human text."""
    if as_json:
        print(json.dumps(to_jsonable(result), indent=2))
    else:
        print(render(result))


def existing_file(text: str) -> Path:
    return Path(text)


class Progress:
    """A small stderr progress indicator: a live bar on a terminal, a line every few seconds otherwise."""

    def __init__(self, label: str, total: int | None = None, stream: Any = None, every_s: float = 5.0):
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.count = 0
        self.every_s = every_s
        self.start = time.monotonic()
        self._last = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, n: int = 1, note: str = "") -> None:
        self.count += n
        now = time.monotonic()
        if self._tty and now - self._last > 0.1:
            self._last = now
            self.stream.write("\r" + self._line(note))
            self.stream.flush()
        elif not self._tty and now - self._last > self.every_s:
            self._last = now
            self.stream.write(self._line(note) + "\n")
            self.stream.flush()

    def _line(self, note: str) -> str:
        elapsed = time.monotonic() - self.start
        if self.total:
            frac = min(1.0, self.count / self.total)
            bar = "#" * int(frac * 24)
            eta = elapsed / frac - elapsed if frac > 0 else 0.0
            text = f"{self.label} [{bar:<24}] {self.count}/{self.total} {elapsed:5.1f}s eta {eta:4.0f}s"
        else:
            text = f"{self.label} {self.count} {elapsed:5.1f}s"
        return f"{text} {note}".rstrip()

    def close(self, note: str = "done") -> None:
        elapsed = time.monotonic() - self.start
        if self._tty:
            self.stream.write("\r" + " " * 90 + "\r")
        self.stream.write(f"{self.label}: {note} ({elapsed:.1f}s)\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close("done" if exc[0] is None else "stopped")


class StatusLine:
    """One self-overwriting status line on an interactive stderr (silent when stderr is not a terminal, so that
    logs and error output stay one line); cleared on exit so an error message stands alone."""

    def __init__(self, label: str, stream: Any = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()

    def show(self, message: str) -> None:
        if self.enabled:
            text = f"{self.label}: {message} ({time.monotonic() - self.start:.0f}s)"
            self.stream.write("\r\033[K" + text[:150])
            self.stream.flush()

    def __enter__(self) -> StatusLine:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()
