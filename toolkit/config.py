"""Typed stage configs: defaults live in frozen dataclasses; files and flags override them, validated.

Every stage (convert, train, bench, pipeline) has one frozen dataclass with a one-line comment per field. A config
file mirrors the same keys; it is parsed with a safe loader (TOML or JSON, never executed) and unknown keys are
rejected with a "did you mean" hint.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from toolkit.errors import UsageError

T = TypeVar("T")


def suggest(word: str, choices: typing.Iterable[str]) -> str:
    """'; did you mean 'x'?' when a close match exists, else ''."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or JSON config file into a dict (safe loaders only)."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"config file not found: {file}")
    try:
        if file.suffix.lower() == ".json":
            data = json.loads(file.read_text())
        elif file.suffix.lower() == ".toml":
            data = tomllib.loads(file.read_text())
        else:
            raise UsageError(f"config file {file}: expected a .toml or .json file")
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"config file {file} is not valid {file.suffix[1:].upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {file}: expected a table of keys at the top level")
    return data


def apply_overrides(config: T, overrides: Mapping[str, Any], where: str = "config") -> T:
    """Return ``config`` with ``overrides`` applied; unknown keys and wrong types are UsageErrors."""
    fields = {f.name: f for f in dataclasses.fields(config)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(type(config))
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in fields:
            raise UsageError(f"{where}: unknown key '{key}'{suggest(key, fields)}")
        values[key] = _coerce(value, hints[key], f"{where}: key '{key}'")
    return dataclasses.replace(config, **values)  # type: ignore[type-var]


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
            raise UsageError(f"{where}: {value!r} is not one of {', '.join(map(str, args))}{suggest(str(value), map(str, args))}")
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
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise UsageError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
