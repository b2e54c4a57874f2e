"""Errors that the CLI turns into a one-line message and an exit code.

Exit codes (the contract of every ``toolkit`` command):

* 0 -- success
* 1 -- runtime failure (:class:`ToolkitError`)
* 2 -- bad usage or bad input (:class:`UsageError`)
* 3 -- device or accelerator unavailable (:class:`DeviceUnavailable`)
* 4 -- a quality gate failed: the output was written and is marked failed (:class:`QualityGateFailed`)

Messages say what happened, what was expected and how to fix it.
"""

from __future__ import annotations

from collections.abc import Callable

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_DEVICE = 3
EXIT_QUALITY = 4


class ToolkitError(Exception):
    """A failure the user should see as one line; exit code 1."""

    exit_code = EXIT_FAILURE


class UsageError(ToolkitError):
    """Bad arguments or bad input files; exit code 2."""

    exit_code = EXIT_USAGE


class DeviceUnavailable(ToolkitError):
    """A requested device, delegate or remote target cannot be reached; exit code 3."""

    exit_code = EXIT_DEVICE


class QualityGateFailed(ToolkitError):
    """The result was made but is not good enough (e.g. int8 accuracy dropped past ``--max-drop``); exit code 4.
    The output is written and marked failed, so it can be inspected."""

    exit_code = EXIT_QUALITY


def one_line(text: str, limit: int = 400) -> str:
    """Collapse a (possibly multi-line) message into one line of at most ``limit`` characters."""
    flat = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def run_script(main: Callable[[], int], name: str) -> int:
    """Run a script's ``main()`` with the CLI's error contract: a ToolkitError becomes one line on stderr and
    its exit code (2 for bad input), Ctrl-C exit 130 -- never a traceback for what the user can fix."""
    import sys

    try:
        return int(main() or 0)
    except ToolkitError as exc:
        print(f"{name}: error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
