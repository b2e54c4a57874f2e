"""Tie a worker process's life to its parent's: when the parent dies (even by SIGKILL) the worker dies too.

Used by the toolkit's child processes (bench's measuring worker, the model probe). The parent passes its pid in
:data:`PARENT_ENV`; the child calls :func:`die_with_parent` first thing. On Linux the kernel delivers SIGKILL to
the child when the parent exits (``prctl(PR_SET_PDEATHSIG)``: nothing runs in the child, so it costs the
measurement nothing); elsewhere a daemon thread polls the parent pid twice a second and exits the process when
the parent is gone (the child is re-parented, its ``getppid()`` changes).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PARENT_ENV = "TOOLKIT_PARENT_PID"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_S = 0.5


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's environment) plus this process's pid as the child's parent."""
    return {**(os.environ if env is None else env), PARENT_ENV: str(os.getpid())}


def die_with_parent() -> str:
    """Arrange for this process to die with the parent named in :data:`PARENT_ENV` (no-op without it).

    Returns how: ``"pdeathsig"``, ``"poll"`` or ``"none"``. Exits at once when the parent is already gone.
    """
    try:  # popped: a process this one starts must not take this process's parent for its own
        parent = int(os.environ.pop(PARENT_ENV, ""))
    except ValueError:
        return "none"
    how = "poll"
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0:
                how = "pdeathsig"
        except (OSError, AttributeError):
            pass
    # The parent may have died before prctl ran (the signal is only sent for a death after it).
    if os.getppid() != parent:
        os._exit(137)
    if how == "poll":
        threading.Thread(target=_watch, args=(parent,), name="toolkit-lifeline", daemon=True).start()
    return how


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_S)
    os._exit(137)
