"""Typed stage configs: defaults live in frozen dataclasses; files and flags override them, validated.

Every stage (convert, train, bench, pipeline) has one frozen dataclass with a one-line comment per field. A config
file mirrors the same keys; it is parsed with a safe loader (TOML or JSON, never executed) and unknown keys are
rejected with a "did you mean" hint.

Numeric ranges live next to the defaults: a config class declares ``LIMITS: ClassVar[Limits] = {"epochs": (1,
100_000), ...}`` and calls :func:`check_ranges` in ``__post_init__``. :func:`apply_overrides` (files, ``--set``,
flags) and :func:`toolkit.cli.common.config_type` (argparse types) check with the same table, so every key and
flag says its valid range ("epochs must be an integer in 1..100000, got 9223372036854775807"). Keys without a
declared range (e.g. a task's options) still must be finite numbers, integers within ``INT_RANGE``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from toolkit.errors import UsageError

T = TypeVar("T")
Limits = Mapping[str, tuple[float, float]]  # key -> (lowest, highest) allowed value, both inclusive

INT_RANGE = (-(2**31 - 1), 2**31 - 1)  # integer keys without a declared range
SEED_RANGE = (0, 2**32 - 1)  # numpy's global seeding (keras.utils.set_random_seed) takes 0..2**32-1
THREADS_RANGE = (1, 1024)  # interpreter threads: LiteRT segfaults from 32768 on (issue 15); "all cores" fits
MAX_NESTING = 32  # tables/arrays inside each other in a config file (ours need 2)
MAX_CONFIG_BYTES = 4 << 20  # a config file is a few KB; refuse to parse a huge one into memory


def suggest(word: str, choices: typing.Iterable[str]) -> str:
    """'; did you mean 'x'?' when a close match exists, else ''."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or JSON config file into a dict (safe loaders only, nesting and size limited)."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"config file not found: {file}")
    if file.suffix.lower() not in (".json", ".toml"):
        raise UsageError(f"config file {file}: expected a .toml or .json file")
    size = file.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise UsageError(
            f"config file {file} is {size / 2**20:.0f} MiB; a config file is at most "
            f"{MAX_CONFIG_BYTES >> 20} MiB of keys"
        )
    try:
        text = file.read_text()
        data = json.loads(text) if file.suffix.lower() == ".json" else tomllib.loads(text)
    except RecursionError:
        raise UsageError(
            f"config file {file}: nested deeper than {MAX_NESTING} levels; a config holds tables of "
            "keys, not deep structures"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, TOMLDecodeError, int digit limits
        raise UsageError(f"config file {file} is not valid {file.suffix[1:].upper()}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot read config file {file}: {exc.strerror or exc}") from None
    check_nesting(data, f"config file {file}")
    if not isinstance(data, dict):
        raise UsageError(f"config file {file}: expected a table of keys at the top level")
    return data


def check_nesting(value: Any, where: str, limit: int = MAX_NESTING) -> None:
    """UsageError when lists/dicts in ``value`` nest deeper than ``limit`` levels (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            if depth > limit:
                raise UsageError(
                    f"{where}: nested deeper than {limit} levels; a config holds tables of keys, "
                    "not deep structures"
                )
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def apply_overrides(config: T, overrides: Mapping[str, Any], where: str = "config") -> T:
    """Return ``config`` with ``overrides`` applied; unknown keys, wrong types and values out of range (the
    class's ``LIMITS``) are UsageErrors that name the key and the valid range."""
    fields = {f.name: f for f in dataclasses.fields(config)}  # type: ignore[arg-type]
    hints = _hints(type(config))
    limits = limits_of(config)
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in fields:
            raise UsageError(f"{where}: unknown key '{key}'{suggest(key, fields)}")
        values[key] = _coerce(value, hints[key], f"{where}: key '{key}'")
        error = range_error(key, values[key], hints[key], limits.get(key))
        if error:
            raise UsageError(f"{where}: {error}")
    return dataclasses.replace(config, **values)  # type: ignore[type-var]


def limits_of(config: Any) -> Limits:
    """The ``LIMITS`` table of a config class or instance ({} when it declares none)."""
    return getattr(config, "LIMITS", {})


def check_ranges(config: Any, where: str) -> None:
    """Check every numeric field of the dataclass ``config`` against its ``LIMITS`` (call in ``__post_init__``);
    UsageError "WHERE: KEY must be ... in LOW..HIGH, got VALUE" for the first one out of range."""
    limits = limits_of(config)
    hints = _hints(type(config))
    fields = dataclasses.fields(config)
    unknown = set(limits) - {field.name for field in fields}
    if unknown:  # a typo in a LIMITS table is a bug in this package, not bad input
        raise TypeError(f"{type(config).__name__}.LIMITS names no field: {', '.join(sorted(unknown))}")
    for field in fields:
        error = range_error(
            field.name, getattr(config, field.name), hints[field.name], limits.get(field.name)
        )
        if error:
            raise UsageError(f"{where}: {error}")


def range_error(key: str, value: Any, hint: Any, bounds: tuple[float, float] | None) -> str | None:
    """The message for ``value`` of the field ``key`` (type ``hint``) outside ``bounds``, else None.

    Integers must lie in ``bounds`` (default ``INT_RANGE``), numbers must be finite and in ``bounds``; a list or
    tuple is checked item by item; None, strings and booleans are not numbers and pass.
    """
    number = number_type(hint)
    if number is None:
        return None
    many = isinstance(value, (list, tuple))
    for item in value if many else (value,):
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            continue
        low, high = bounds if bounds is not None else (INT_RANGE if number is int else (-math.inf, math.inf))
        finite = isinstance(item, int) or math.isfinite(item)
        if finite and low <= item <= high:
            continue
        bounded = math.isfinite(low) and math.isfinite(high)
        if number is int:
            what = "integers" if many else "an integer"
        elif bounded:
            what = "numbers" if many else "a number"
        else:
            what = "finite numbers" if many else "a finite number"
        span = f" in {_show(low)}..{_show(high)}" if bounded else ""
        return f"{key} must be {what}{span}, got {_show(item)}"
    return None


@functools.cache
def number_type(hint: Any) -> type | None:
    """int or float for a numeric field type (also ``int | None``, ``tuple[int, ...]``), else None."""
    if hint in (int, float):
        return hint
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType, tuple, list):
        kinds = {number_type(arg) for arg in typing.get_args(hint) if arg not in (type(None), Ellipsis)}
        kinds.discard(None)
        return float if float in kinds else kinds.pop() if kinds else None
    return None


def _show(value: float) -> str:
    if isinstance(value, int):
        if abs(value) < 10**30:
            return str(value)
        return f"{'-' if value < 0 else ''}an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    return f"{value:g}"


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if arg is type(None) and value is None:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except UsageError as exc:
                errors.append(str(exc))
        raise UsageError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise UsageError(
                f"{where}: {value!r} is not one of {', '.join(map(str, args))}{suggest(str(value), map(str, args))}"
            )
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, where) for v in value]
        return tuple(items) if origin is tuple else items
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise UsageError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except OverflowError:  # an integer beyond the float range (JSON and TOML integers have no limit)
            raise UsageError(f"{where}: expected a finite number, got {_show(value)}") from None
    if hint is str:
        if not isinstance(value, str):
            raise UsageError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
