"""Load a ``.tflite`` file in a child process before this process does, so that LiteRT cannot crash the caller.

:mod:`toolkit.runtime.tflite_check` refuses what is known to crash LiteRT's loader; the probe covers what is not
known yet. :func:`check_loadable` runs ``python -m toolkit.runtime.probe_worker`` on the file (build the interpreter,
``allocate_tensors``, one invoke on zeros) and turns a crash (a signal), a hang or a load error into a one-line
:class:`~toolkit.errors.UsageError` (exit 2). It is skipped, and the caller told so, for files that are known
good -- cheaply, so the in-process path stays fast:

* ``trusted``: the toolkit converted it (its convert manifest ``NAME.json`` holds this file's sha256; the
  converter loaded and ran it before writing the manifest);
* ``cached``: a probe already passed this exact content (sha256) with this runtime and delegate, in this
  process or earlier (``$TOOLKIT_HOME/probed/``);
* ``worker``: the caller is itself a disposable worker process (bench's measuring child);
* a model with custom ops (an Edge TPU-compiled one): only its delegate can load it, in process.

``TOOLKIT_MODEL_PROBE``: ``auto`` (the default, as above), ``always`` (probe even trusted/cached files) or
``off`` (the Python checks only). ``TOOLKIT_PROBE_TIMEOUT_S``: how long a probe may take (default 60).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError, UsageError, one_line
from toolkit.runtime.tflite_file import ModelFile

PROBE_ENV = "TOOLKIT_MODEL_PROBE"
TIMEOUT_ENV = "TOOLKIT_PROBE_TIMEOUT_S"
MODES = ("auto", "always", "off", "worker")
DEFAULT_TIMEOUT_S = 60.0
MANIFEST_SCHEMA = "edge-toolkit/convert-manifest"
CACHE_LIMIT = 2000  # files that passed a probe, remembered in $TOOLKIT_HOME/probed/

_probed: dict[str, str] = {}  # cache key -> the check that passed, in this process


def probe_mode() -> str:
    """The probe mode from $TOOLKIT_MODEL_PROBE, lower-cased: one of :data:`MODES` (default ``"auto"``).
    Raises UsageError for any other value."""
    mode = os.environ.get(PROBE_ENV, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise UsageError(f"{PROBE_ENV}={mode!r} is not one of auto, always, off")
    return mode


def probe_timeout_s() -> float:
    """Seconds a child-process probe may take, from $TOOLKIT_PROBE_TIMEOUT_S (default 60). Raises UsageError
    unless the value is a number in (0, 3600]."""
    text = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise UsageError(f"{TIMEOUT_ENV}={text!r}: give seconds in (0, 3600]")
    return value


def check_loadable(
    path: Path, sha256: str, model: ModelFile, backend: Any, delegate: str, force: bool = False
) -> str:
    """Make sure loading ``path`` (content hash ``sha256``, already verified as ``model``) cannot crash this
    process; return which check vouches for it (one line, e.g. ``"verified in Python; probed in a child
    process"``). ``force``: probe even a trusted or cached file. Raises UsageError for a file that crashes,
    hangs or fails to load in the probe."""
    mode = "always" if force else probe_mode()
    head = "verified in Python"
    if mode == "off":
        return f"{head}; not probed ({PROBE_ENV}=off)"
    if mode == "worker":
        return f"{head}; loaded in a disposable worker process (not probed)"
    custom = sorted({op.op.removeprefix("CUSTOM:") for op in model.ops if op.op.startswith("CUSTOM:")})
    if custom:
        return f"{head}; not probed: custom op {custom[0]} loads only with its delegate, in process"
    resolver = "none" if delegate == "none" else "default"
    key = re.sub(r"[^A-Za-z0-9._-]", "_", f"{sha256}-{backend.name}-{backend.version}-{resolver}")
    if mode == "auto":
        trusted = _trusted_by_manifest(path, sha256)
        if trusted:
            return f"{head}; trusted: sha256 matches its convert manifest {trusted} (not probed)"
        if key in _probed or _cache_file(key).is_file():
            return _probed.setdefault(key, f"{head}; probed before (cache)")
    _probe(path, sha256, backend, resolver)
    _probed[key] = check = f"{head}; probed in a child process ({backend.name} loaded it and ran it once)"
    _remember(key)
    return check


def _trusted_by_manifest(path: Path, sha256: str) -> str | None:
    """The name of the convert manifest beside ``path`` that records this content's sha256, else None."""
    for candidate in (path.with_suffix(".json"), path.with_name(path.name + ".json")):
        try:
            data = json.loads(candidate.read_text()) if candidate.is_file() else None
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            continue
        if (
            isinstance(data, dict)
            and str(data.get("schema", "")).startswith(MANIFEST_SCHEMA)
            and isinstance(data.get("output"), dict)
            and data["output"].get("sha256") == sha256
        ):
            return candidate.name
    return None


def _remember(key: str) -> None:
    """Record a passed probe on disk; past CACHE_LIMIT entries the older half goes."""
    folder = _cache_file(key).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _cache_file(key).touch()
        entries = list(folder.iterdir())
        if len(entries) > CACHE_LIMIT:
            for old in sorted(entries, key=lambda e: e.stat().st_mtime)[: len(entries) // 2]:
                old.unlink(missing_ok=True)
    except OSError:  # a read-only home, a racing cleaner: the probe just runs again next time
        pass


def _cache_file(key: str) -> Path:
    from toolkit.paths import state_dir

    return state_dir() / "probed" / key


def _probe(path: Path, sha256: str, backend: Any, resolver: str) -> None:
    from toolkit.paths import PACKAGE_DIR
    from toolkit.runtime.lifeline import child_env

    timeout = probe_timeout_s()
    env = child_env()
    root = str(PACKAGE_DIR.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    request = json.dumps({"path": str(path), "sha256": sha256, "backend": backend.name, "resolver": resolver})
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "toolkit.runtime.probe_worker"],
            input=request,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise UsageError(
            f"{path}: {backend.name} {backend.version} did not load and run it within {timeout:g} s "
            f"in a probe process; check the file (or allow longer: {TIMEOUT_ENV})"
        ) from None
    except OSError as exc:
        raise ToolkitError(f"cannot start the model probe ({sys.executable}): {exc.strerror}") from None
    lines = proc.stdout.strip().splitlines()
    try:
        reply = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        reply = None
    if isinstance(reply, dict) and reply.get("usage"):
        raise UsageError(reply["usage"])
    if proc.returncode == 0 and isinstance(reply, dict):
        if reply.get("error"):
            raise UsageError(f"{backend.name} {backend.version} cannot load {path}: {reply['error']}")
        return
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        said = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("INFO: ")]
        detail = f": {one_line(said[-1], 160)}" if said else ""
        raise UsageError(
            f"{path}: not a valid TFLite model ({backend.name} {backend.version} crashes loading it: "
            f"{name} in a probe process{detail}); re-export it or check that the copy is complete"
        )
    tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output"
    raise ToolkitError(
        f"the model probe for {path.name} failed (exit {proc.returncode}): {one_line(tail, 200)}"
    )
