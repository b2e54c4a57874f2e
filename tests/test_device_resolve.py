"""The device install (`pip install .`, no extras) resolves to binary wheels on every platform we claim.

pip evaluates environment markers against the machine it runs on, not against ``--platform``, so the project's
requirements are evaluated here for the target (``packaging.markers``) and then resolved by pip for that target
with ``--only-binary=:all:`` (a dry run: wheel metadata only, nothing is installed). The manylinux tags are the
whole range a glibc 2.36 system accepts (ai-edge-litert 2.x tags its aarch64 wheels manylinux_2_27, which a check
with manylinux_2_17 alone misses). aarch64 gets ai-edge-litert 1.4.0: 2.3.0's aarch64 wheel crashes creating an
interpreter under the emulated Pi (tests/test_pi_emulation.py), 1.4.0 runs every zoo model there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import REPO
from packaging.markers import default_environment
from packaging.requirements import Requirement

# Raspberry Pi OS Bookworm and Debian 12 have glibc 2.36: every manylinux tag up to 2_36 installs there.
PLATFORMS = {
    machine: ["manylinux2014_" + machine] + [f"manylinux_2_{minor}_{machine}" for minor in range(17, 37)]
    for machine in ("aarch64", "x86_64")
}
# Raspberry Pi OS Bookworm ships Python 3.11; 3.12 is what a user builds or gets from uv/pyenv.
CLAIMED = [("aarch64", "3.11"), ("aarch64", "3.12"), ("x86_64", "3.11"), ("x86_64", "3.12")]


def device_requirements(machine: str, python: str) -> list[str]:
    """The project's core requirements that apply on ``machine`` / ``python``, markers removed."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = default_environment() | {
        "platform_machine": machine,
        "python_version": python,
        "python_full_version": f"{python}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
    }
    chosen = []
    for line in project["dependencies"]:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            req.marker = None
            chosen.append(str(req))
    return chosen


def resolve(machine: str, python: str, requirements: list[str], tmp: Path) -> dict[str, str]:
    """pip's resolution for the target: {distribution name: wheel file name}; AssertionError with pip's words."""
    report = tmp / f"{machine}-{python}.json"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--ignore-installed",
        "--quiet",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        python,
        "--target",
        str(tmp / "target"),
        "--report",
        str(report),
    ]
    for tag in PLATFORMS[machine]:
        cmd += ["--platform", tag]
    proc = subprocess.run(cmd + requirements, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{machine} cp{python}: {proc.stderr.strip().splitlines()[-1:]}"
    installs = json.loads(report.read_text())["install"]
    return {
        item["metadata"]["name"].lower(): item["download_info"]["url"].rsplit("/", 1)[-1] for item in installs
    }


def test_markers_pick_a_litert_line_per_machine() -> None:
    assert "ai-edge-litert==1.4.0" in device_requirements("aarch64", "3.11")
    assert "ai-edge-litert==2.3.0" in device_requirements("x86_64", "3.11")
    for machine, python in CLAIMED:
        names = [Requirement(r).name for r in device_requirements(machine, python)]
        assert sorted(names) == ["ai-edge-litert", "numpy", "opencv-python-headless"], names


@pytest.mark.parametrize(("machine", "python"), CLAIMED)
def test_device_install_resolves_to_wheels(machine: str, python: str, tmp_path: Path) -> None:
    wheels = resolve(machine, python, device_requirements(machine, python), tmp_path)
    for name in ("ai-edge-litert", "numpy", "opencv-python-headless"):
        assert name in wheels, wheels
        assert wheels[name].endswith(".whl")
        assert machine in wheels[name] or "-none-any" in wheels[name], wheels[name]
    assert f"cp{python.replace('.', '')}" in wheels["ai-edge-litert"]
    assert not any(heavy in wheels for heavy in ("tensorflow", "keras", "torch")), wheels
