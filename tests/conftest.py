"""Shared fixtures: pinned seeds, the shared real-data folder, a CLI runner, TensorFlow availability."""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)


def _shared_root() -> Path:
    env = os.environ.get("TOOLKIT_SHARED")
    return Path(env).resolve() if env else (REPO / ".." / "shared").resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared real-data folder; tests that need it skip (never pass) with the reason when it is absent."""
    root = _shared_root()
    if not (root / "data").is_dir():
        pytest.skip(f"shared real data not found at {root} (set TOOLKIT_SHARED)")
    return root


HAS_TF = importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("keras") is not None


def require_tf() -> None:
    if not HAS_TF:
        pytest.skip("needs the train extra: pip install '.[train]'")


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    input: str | None = None,
) -> CliResult:
    """Run ``python -m toolkit ARGS`` in a child process (the real entry point, real exit codes)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit", *map(str, args)],
        cwd=cwd or REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli


def assert_one_line_error(result: CliResult, code: int = 2, contains: str | None = None) -> None:
    """A bad-input failure: the expected exit code, exactly one line on stderr, no traceback."""
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    if contains:
        assert contains.lower() in lines[0].lower(), lines[0]
