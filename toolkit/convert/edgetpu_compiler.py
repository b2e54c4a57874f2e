"""Run Coral's ``edgetpu_compiler`` on a full-int8 ``.tflite`` and read its log.

The compiler (x86-64 Debian/Ubuntu only: ``sudo apt install edgetpu-compiler`` from Coral's apt repository) writes
``<stem>_edgetpu.tflite`` and ``<stem>_edgetpu.log`` into its output folder and prints a summary: how much of the
on-chip memory the parameters use, what streams from host memory, how many ops run on the Edge TPU and on the
CPU, and with ``-s`` a table of every operator and its status. :func:`parse_log` reads that summary (compiler 16;
the fields it cannot find stay None), :func:`compile_model` runs it and checks what it wrote.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError, one_line

COMPILER = "edgetpu_compiler"
INSTALL = (
    "install it on an x86-64 Debian/Ubuntu host: add Coral's apt repository (deb https://packages.cloud."
    "google.com/apt coral-edgetpu-stable main) and sudo apt-get install edgetpu-compiler"
)
TIMEOUT_S = 600
_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "KB": 1e3, "MB": 1e6, "GB": 1e9}


@dataclass
class CompilerReport:
    """What ``edgetpu_compiler`` said about one model."""

    version: str | None = None
    succeeded: bool = False
    on_chip_used_bytes: int | None = None
    on_chip_remaining_bytes: int | None = None
    off_chip_bytes: int | None = None  # parameters streamed from host memory on every inference
    subgraphs: int | None = None  # Edge TPU subgraphs (custom ops)
    total_ops: int | None = None
    edgetpu_ops: int | None = None
    cpu_ops: int | None = None
    operators: list[dict[str, Any]] = field(default_factory=list)  # [{op, count, status}] from the -s table
    output: str | None = None  # the compiled model written
    log: str | None = None  # the compiler's .log file

    def as_dict(self) -> dict[str, Any]:
        """All fields as a JSON-ready dict (sizes in bytes, None where the compiler did not say)."""
        return asdict(self)


def _size(text: str) -> int | None:
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMG]?i?B)\s*", text)
    if not match or match.group(2) not in _UNITS:
        return None
    return int(round(float(match.group(1)) * _UNITS[match.group(2)]))


def parse_log(text: str) -> CompilerReport:
    """Parse the compiler's printed summary (``-s`` adds the operator table)."""
    report = CompilerReport()

    def field_of(label: str) -> str | None:
        match = re.search(rf"^{re.escape(label)}:\s*(.+?)\s*$", text, re.MULTILINE)
        return match.group(1) if match else None

    version = re.search(r"Edge TPU Compiler version\s+(\S+)", text)
    report.version = version.group(1) if version else None
    report.succeeded = bool(re.search(r"Model compiled successfully|Compilation succeeded", text))
    for attr, label in (
        ("on_chip_used_bytes", "On-chip memory used for caching model parameters"),
        ("on_chip_remaining_bytes", "On-chip memory remaining for caching model parameters"),
        ("off_chip_bytes", "Off-chip memory used for streaming uncached model parameters"),
    ):
        value = field_of(label)
        setattr(report, attr, _size(value) if value else None)
    for attr, label in (
        ("subgraphs", "Number of Edge TPU subgraphs"),
        ("total_ops", "Total number of operations"),
        ("edgetpu_ops", "Number of operations that will run on Edge TPU"),
        ("cpu_ops", "Number of operations that will run on CPU"),
    ):
        value = field_of(label)
        setattr(report, attr, int(value) if value and value.isdigit() else None)
    if report.edgetpu_ops is None and report.succeeded and report.total_ops is not None:
        report.edgetpu_ops, report.cpu_ops = report.total_ops, 0  # compiler 16 omits the split when all map
    report.output = field_of("Output model")
    report.log = field_of("Operation log")
    table = re.search(r"^Operator\s+Count\s+Status\s*$(.*)", text, re.MULTILINE | re.DOTALL)
    if table:
        for line in table.group(1).splitlines():
            row = re.match(r"^([A-Z][A-Z0-9_]*)\s+(\d+)\s+(\S.*?)\s*$", line)
            if row:
                report.operators.append(
                    {"op": row.group(1), "count": int(row.group(2)), "status": row.group(3)}
                )
    return report


def find_compiler() -> str | None:
    """Path of ``edgetpu_compiler`` on $PATH, or None when it is not installed."""
    return shutil.which(COMPILER)


def compile_model(model: Path, out_dir: Path, compiler: str) -> CompilerReport:
    """``edgetpu_compiler -s -o OUT_DIR MODEL``; ToolkitError (exit 1) with the compiler's own words on failure."""
    try:
        proc = subprocess.run(
            [compiler, "-s", "-o", str(out_dir), str(model)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise ToolkitError(f"{COMPILER} did not finish in {TIMEOUT_S} s on {model.name}") from None
    except OSError as exc:
        raise ToolkitError(f"cannot run {compiler}: {exc.strerror}") from None
    report = parse_log(proc.stdout)
    expected = out_dir / f"{model.stem}_edgetpu.tflite"
    if proc.returncode != 0 or not expected.is_file():
        said = [line for line in (proc.stderr + "\n" + proc.stdout).splitlines() if line.strip()]
        raise ToolkitError(
            f"{COMPILER} failed on {model.name} (exit {proc.returncode}): "
            f"{one_line(said[-1] if said else 'no output', 240)}"
        )
    report.output = str(expected)
    log = out_dir / f"{model.stem}_edgetpu.log"
    report.log = str(log) if log.is_file() else None
    return report
