"""Helpers shared by subcommands: typed argument parsers, result printing, progress."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from toolkit.fileio import to_jsonable

INT_MAX = (
    2**31 - 1
)  # the largest integer a generic count flag takes (a flag of a config key has its own range)


def positive_int(text: str) -> int:
    """An argparse type: an integer in 1..INT_MAX."""
    value = _int(text, "a positive integer")
    if not 1 <= value <= INT_MAX:
        raise argparse.ArgumentTypeError(f"expected a positive integer (1..{INT_MAX}), got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: an integer in 0..INT_MAX."""
    value = _int(text, "an integer >= 0")
    if not 0 <= value <= INT_MAX:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 (0..{INT_MAX}), got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0 (inf and nan are refused)."""
    value = _float(text, "a positive number")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite positive number, got {text!r}")
    return value


def int_list(text: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4], each in 1..INT_MAX; an empty item ('1,,2') is an error."""
    values = _ints(text)
    if any(not 1 <= v <= INT_MAX for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated integers in 1..{INT_MAX}, got {text!r}")
    return values


def config_type(config: str, key: str) -> Callable[[str], Any]:
    """The argparse type of the flag for config key ``key`` of the dataclass ``config`` ("module:Class").

    It parses the text as the field's type (an integer, a finite number, or comma-separated integers for a tuple)
    and checks the range declared in the class's ``LIMITS`` with :func:`toolkit.config.range_error`, so the flag
    and the config key share one range and one message ("threads must be an integer in 1..1024, got 32768").
    The class is imported at the first use: building the parser stays cheap.
    """

    def parse(text: str) -> Any:
        import importlib
        import typing

        from toolkit.config import limits_of, number_type, range_error

        module, _, name = config.partition(":")
        cls = getattr(importlib.import_module(module), name)
        hint = typing.get_type_hints(cls)[key]
        number = number_type(hint)
        many = any(typing.get_origin(arg) in (tuple, list) for arg in (hint, *typing.get_args(hint)))
        if many:
            value: Any = tuple(_ints(text))
        elif number is int:
            value = _int(text, "an integer")
        else:
            value = _float(text, "a number")
        error = range_error(key, value, hint, limits_of(cls).get(key))
        if error:
            raise argparse.ArgumentTypeError(error)
        return list(value) if many else value

    parse.__name__ = key
    return parse


def check_folder_writable(path: str | Path | None, flag: str) -> None:
    """UsageError (exit 2) before any work when the output folder ``path`` (created later if missing) cannot
    hold files: a file in its place, or a nearest existing folder in which a probe file cannot be made (read-only,
    /proc, no permission). Probed by writing, since access() says yes to root everywhere."""
    import tempfile

    from toolkit.errors import UsageError

    if path is None:
        return
    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise UsageError(f"{flag} {target} is a file; give a folder")
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{flag} {target}: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise UsageError(
            f"{flag} {target}: cannot write in {existing} ({exc.strerror or exc}); give a writable folder"
        ) from None


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text[:40]!r}") from None


def _float(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text[:40]!r}") from None


def _ints(text: str) -> list[int]:
    parts = [part.strip() for part in text.split(",")]
    try:
        if not all(parts):
            raise ValueError(text)
        return [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 1,2,4, got {text[:40]!r}"
        ) from None


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


TASK_HELP = (
    "score a model of no toolkit kind as KIND (classifier, detector, segmenter, behaviour, autoencoder, "
    "vae_encoder, vae_decoder): its inputs and outputs are matched to that kind's by position"
)


def add_task_flag(parser: argparse.ArgumentParser) -> None:
    """``--task KIND`` (eval, convert, quant-report, bench matrix)."""
    parser.add_argument("--task", metavar="KIND", help=TASK_HELP)


def add_verbose_flag(parser: argparse.ArgumentParser) -> None:
    """``--verbose``: TensorFlow's own logging (silenced by default); apply with :func:`apply_verbose`."""
    parser.add_argument(
        "--verbose", action="store_true", help="let TensorFlow's own logging through (silenced by default)"
    )


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
