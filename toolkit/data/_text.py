"""Line-oriented text parsing shared by the label and trajectory readers: every error names file and line."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from toolkit.errors import UsageError


def read_text(path: str | Path, what: str) -> str:
    """The file's text; a missing, unreadable or non-UTF-8 file is a UsageError naming it."""
    file = Path(path)
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{what} not found: {file}") from None
    except IsADirectoryError:
        raise UsageError(f"{what} {file} is a folder, expected a text file") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} {file} is not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {file}: {exc.strerror or exc}") from None


def numbered_fields(text: str) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, whitespace-split fields) for each non-blank line; tabs and spaces both separate."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if fields:
            yield lineno, fields


def to_floats(fields: list[str], where: str) -> list[float]:
    """Parse every field as a finite float; ``where`` ('file line N') prefixes the error."""
    values = []
    for field in fields:
        try:
            value = float(field)
        except ValueError:
            raise UsageError(f"{where}: {field!r} is not a number") from None
        if not math.isfinite(value):
            raise UsageError(f"{where}: {field!r} is not a finite number")
        values.append(value)
    return values


def to_int(value: float, field: str, where: str) -> int:
    """A float that must hold an integer (class ids are often written '3' or '3.0')."""
    if value != int(value):
        raise UsageError(f"{where}: {field} must be a whole number, got {value:g}")
    return int(value)
