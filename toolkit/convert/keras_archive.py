"""Checks of a ``.keras`` archive before Keras opens it: what it would unpack, and what its config would import.

Keras' own safe mode refuses Lambda layers, but it still reads every archive member into memory (a 10 GB member
compressed to 10 MB is a zip bomb) and imports the module a config entry names before it finds out that the
class is not a layer. Both are checked here from the zip directory and ``config.json`` alone, with nothing
imported or unpacked beyond the config:

* every member's declared size is bounded (``zipfile`` never inflates past it) and a large member may not have
  an inflation ratio that no real weights file has;
* in safe mode every ``module`` the config names is Keras' or this toolkit's, or its class is already registered
  in the calling process (``--trust-model`` lifts this).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from toolkit.errors import UsageError

MAX_UNPACKED_BYTES = 4 << 30  # all members together: no edge model comes close
MAX_CONFIG_BYTES = 64 << 20  # config.json and metadata.json are read whole
LARGE_MEMBER_BYTES = 64 << 20  # members above this size ...
MAX_RATIO = 50  # ... may not inflate more than this (float weights compress 1.1-3x; zeros 1000x)
SAFE_MODULES = ("keras", "toolkit")  # top-level packages a config may name in safe mode
TRUST_HINT = "pass --trust-model only if you trust the file"


def check_keras_archive(
    path: Path, trust: bool, registered: Callable[[str], bool] = lambda name: False
) -> None:
    """UsageError for an archive that would unpack to more than it should, or (unless ``trust``) a config that
    names a module outside Keras and this toolkit. ``registered(name)``: the class is already registered in this
    process (``keras.saving.register_keras_serializable``), so Keras takes it from the registry, importing nothing;
    that is how a Python caller converts its own subclassed model."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            _check_sizes(path, members)
            names = {m.filename for m in members}
            if "config.json" not in names:
                raise UsageError(
                    f"cannot load {path}: no config.json, not a Keras v3 .keras archive; save the model with "
                    "model.save('m.keras')"
                )
            text = archive.read("config.json")
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
        raise UsageError(
            f"cannot load {path}: a damaged .keras archive ({type(exc).__name__}: {exc}); save it again"
        ) from None
    try:
        config = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise UsageError(
            f"cannot load {path}: config.json is not valid JSON ({type(exc).__name__}); save the model again"
        ) from None
    if not trust:  # the compile config (losses, metrics) is never read: models load with compile=False
        model = (
            {k: v for k, v in config.items() if k != "compile_config"} if isinstance(config, dict) else config
        )
        _check_modules(path, model, registered)


def _check_sizes(path: Path, members: list[zipfile.ZipInfo]) -> None:
    total = 0
    for member in members:
        total += member.file_size
        big = member.file_size > LARGE_MEMBER_BYTES
        if member.filename.endswith(".json") and member.file_size > MAX_CONFIG_BYTES:
            raise UsageError(
                f"cannot load {path}: {member.filename} unpacks to {_mib(member.file_size)}; a model config is "
                f"at most {_mib(MAX_CONFIG_BYTES)}: refused"
            )
        if big and member.file_size > MAX_RATIO * max(member.compress_size, 1):
            raise UsageError(
                f"cannot load {path}: {member.filename} unpacks to {_mib(member.file_size)} from "
                f"{_mib(member.compress_size)} (x{member.file_size // max(member.compress_size, 1)}): "
                "refused as a zip bomb; no weights file compresses like that"
            )
    if total > MAX_UNPACKED_BYTES:
        raise UsageError(
            f"cannot load {path}: it unpacks to {_mib(total)}, more than the {_mib(MAX_UNPACKED_BYTES)} an edge "
            "model may have: refused"
        )


def _check_modules(path: Path, config: Any, registered: Callable[[str], bool]) -> None:
    for entry in _entries(config):
        module, name = str(entry.get("module")), entry.get("class_name")
        if entry.get("registered_name") and registered(str(entry["registered_name"])):
            continue
        if name == "Lambda" and module.split(".")[0] == "keras":
            raise UsageError(
                f"cannot load {path}: it contains a Lambda layer (arbitrary Python code), refused in safe mode; "
                f"rewrite it as a registered layer, or {TRUST_HINT}"
            )
        if module.split(".")[0] not in SAFE_MODULES:
            raise UsageError(
                f"cannot load {path}: config.json names '{name}' from module '{module}', outside Keras and this "
                f"toolkit; loading it would import and run that module's code: refused in safe mode "
                f"({TRUST_HINT})"
            )


def _entries(value: Any) -> list[dict[str, Any]]:
    """Every dict in the config that names a ``module`` (iteratively: the nesting is bounded, the breadth not)."""
    found: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "module" in item and item["module"] is not None:
                found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"
