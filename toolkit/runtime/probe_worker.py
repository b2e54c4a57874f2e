"""The model probe's child process: ``python -m toolkit.runtime.probe_worker`` (see :mod:`toolkit.runtime.probe`).

Reads ``{"path", "sha256", "backend", "resolver"}`` as JSON on stdin, builds the interpreter the way
:class:`~toolkit.runtime.Runner` does (one thread), runs ``allocate_tensors`` and one invoke on zeros, and prints
one JSON line: ``{}`` (loaded and ran), ``{"invoke_error": ...}`` (loaded; the invoke failed cleanly),
``{"error": ...}`` (LiteRT refused to load it) or ``{"usage": ...}`` (the request itself was wrong). A crash shows
as the signal in the exit status. Kept apart from ``probe.py`` so that ``toolkit.runtime`` does not import it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError, UsageError, one_line


def _child() -> int:
    """Entry point: a JSON request on stdin, one JSON line on stdout ({} or {"error": ...})."""
    from toolkit.runtime.lifeline import die_with_parent

    die_with_parent()
    try:
        request = json.loads(sys.stdin.read())
        return _load_and_run(
            Path(request["path"]), request["sha256"], request["backend"], request["resolver"]
        )
    except ToolkitError as exc:
        print(json.dumps({"usage": one_line(str(exc))}))
        return 0


def _load_and_run(path: Path, sha256: str, backend_name: str, resolver: str) -> int:
    import hashlib

    import numpy as np

    from toolkit.runtime.backends import select_backend

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise UsageError(f"{path} changed while it was being checked; run again")
    backend = select_backend(backend_name)
    kwargs: dict[str, Any] = {"model_path": str(path), "num_threads": 1}
    if resolver == "none" and backend.op_resolver_type is not None:
        kwargs["experimental_op_resolver_type"] = backend.op_resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:  # stderr goes to the parent, which shows the last line of a crash
        interpreter = backend.interpreter_cls(**kwargs)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        print(json.dumps({"error": one_line(str(exc), 240)}))
        return 0
    try:  # a clean error here is the caller's to report (with real inputs); only a crash or a hang matters
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        interpreter.invoke()
    except (ValueError, RuntimeError) as exc:
        print(json.dumps({"invoke_error": one_line(str(exc), 240)}))
        return 0
    print(json.dumps({}))
    return 0


if __name__ == "__main__":
    sys.exit(_child())
