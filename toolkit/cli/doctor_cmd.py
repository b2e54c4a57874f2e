"""toolkit doctor [--json] [--require edgetpu|camera|picamera2 ...]"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from toolkit.cli.common import add_json_flag, emit

# Keys of toolkit.deploy.doctor.REQUIREMENTS (kept here so that `toolkit --help` imports no check code).
REQUIRABLE = ("edgetpu", "camera", "picamera2")

HELP = "check this machine: runtime, cameras, picamera2, Edge TPU, throttling, disk, memory; what to install"
DESCRIPTION = (
    HELP
    + """

Every line says what was found and, for anything missing, the exact step that installs it. Nothing is opened:
cameras and Edge TPUs are found through /dev and /sys; the runtime runs one tiny zoo model on zeros.
Status: ok, warn (works with a caveat), missing (absent or not usable by this user), n/a (not relevant here).
Exit 0, or 3 when a --require'd piece is missing (with a one-line error naming the fix).

  toolkit doctor
  toolkit doctor --require edgetpu          # in a setup script: stop early without a usable Coral
  toolkit doctor --json | jq '.checks[] | select(.status == "missing")'
"""
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--require (repeatable, choices REQUIRABLE) and --json."""
    parser.add_argument(
        "--require",
        action="extend",
        nargs="+",
        choices=REQUIRABLE,
        default=[],
        metavar="WHAT",
        help=f"exit 3 unless these work here: {', '.join(REQUIRABLE)} (repeatable)",
    )
    add_json_flag(parser)


def render(checks: list[Any]) -> str:
    """The aligned table: check, status, what was found; the fix on the line below when there is one."""
    width = max(len("check"), *(len(c.name) for c in checks))
    lines = [f"{'check':<{width}}  {'status':<7}  found", f"{'-' * width}  {'-' * 7}  {'-' * 40}"]
    for c in checks:
        lines.append(f"{c.name:<{width}}  {c.status:<7}  {c.detail}")
        if c.fix:
            label = "if wanted:" if c.status == "n/a" else "fix:" if c.status != "ok" else "note:"
            lines.append(f"{'':<{width}}  {'':<7}  {label} {c.fix}")
    counts = {s: sum(c.status == s for c in checks) for s in ("ok", "warn", "missing", "n/a")}
    lines.append("")
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the report; 0, or 3 (one line on stderr naming the fix) when a --require'd piece is missing."""
    from dataclasses import asdict

    from toolkit.deploy.doctor import run_checks, unmet
    from toolkit.errors import EXIT_DEVICE, one_line

    checks = run_checks()
    failing = {req: unmet(checks, req) for req in dict.fromkeys(args.require)}
    result = {
        "checks": [asdict(c) for c in checks],
        "summary": {s: sum(c.status == s for c in checks) for s in ("ok", "warn", "missing", "n/a")},
        "required": {req: not bad for req, bad in failing.items()},
    }
    emit(result, args.json, lambda _: render(checks))
    missing = [req for req, bad in failing.items() if bad]
    if missing:
        first = failing[missing[0]][0]
        others = f" (also missing: {', '.join(missing[1:])})" if missing[1:] else ""
        # Printed here rather than raised as DeviceUnavailable: the CLI's error line stops at 400 characters and
        # a Coral fix (apt repo + key + install) is longer; it must arrive whole, still on one line, exit 3.
        print(
            f"toolkit doctor: error: --require {missing[0]}: {first.name}: "
            f"{one_line(first.detail)}{others}; fix: {one_line(first.fix or 'see toolkit doctor', 1000)}",
            file=sys.stderr,
        )
        return EXIT_DEVICE
    return 0
