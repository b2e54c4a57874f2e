"""deploy/raspberry-pi: the installer refuses what cannot work with a clear message and exit 2, installs a
working toolkit idempotently, the systemd unit verifies, and every shell script passes shellcheck."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

PI = REPO / "deploy" / "raspberry-pi"
INSTALL = PI / "install.sh"
UNIT = PI / "edge-toolkit-demo.service"
SHELL_SCRIPTS = sorted([*REPO.glob("deploy/**/*.sh"), REPO / "scripts" / "test.sh", REPO / ".ci" / "run"])


def _install(
    *args: str, env: dict[str, str] | None = None, timeout: int = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ | (env or {}),
    )


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: scripts/test.sh installs it (apt-get install {name})"
    return path


def test_shellcheck_passes_on_every_script() -> None:
    proc = subprocess.run(
        [_tool("shellcheck"), "--severity=style", *map(str, SHELL_SCRIPTS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert INSTALL in SHELL_SCRIPTS and PI / "emulate.sh" in SHELL_SCRIPTS


def test_systemd_unit_verifies_and_has_the_watchdog_settings(tmp_path: Path) -> None:
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=30",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "StartLimitBurst=5",
        "StartLimitIntervalSec=600",
        "NotifyAccess=main",
    ):
        assert f"\n{line}\n" in text, line
    # systemd-analyze checks that ExecStart exists: point it at this venv's toolkit (what install.sh does with
    # the prefix).
    toolkit = Path(sys.executable).parent / "toolkit"
    assert toolkit.exists()
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace("/opt/edge-toolkit/venv/bin/toolkit", str(toolkit)))
    proc = subprocess.run(
        [_tool("systemd-analyze"), "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "error" not in proc.stderr.lower(), proc.stderr


def test_config_file_is_a_valid_demo_config() -> None:
    from toolkit.config import apply_overrides, load_config_file
    from toolkit.pipeline.config import PipelineConfig

    config = apply_overrides(PipelineConfig(), load_config_file(str(PI / "demo.toml")), where="demo.toml")
    assert config.source == "picamera2" and config.serve == "0.0.0.0:8080"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"INSTALL_ARCH": "armv7l"},
            "32-bit ARM (armv7l) is not supported: no LiteRT or OpenCV wheels exist for it; "
            "install the 64-bit Raspberry Pi OS (Bookworm) and run this again",
        ),
        (
            {"INSTALL_ARCH": "riscv64"},
            "unsupported machine 'riscv64': the device runtime has wheels for aarch64 and x86_64 Linux",
        ),
    ],
)
def test_installer_refuses_unsupported_machines(env: dict[str, str], message: str) -> None:
    proc = _install("--prefix", "/nonexistent/never-made", env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"install.sh: {message}"


def test_installer_refuses_old_systems_and_bad_options(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text(
        'PRETTY_NAME="Raspbian GNU/Linux 11 (bullseye)"\nID=raspbian\nVERSION_CODENAME=bullseye\n'
    )
    proc = _install(
        "--prefix", str(tmp_path / "p"), env={"INSTALL_OS_RELEASE": str(release), "INSTALL_ARCH": "aarch64"}
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(
        "is too old or 32-bit: use Raspberry Pi OS Bookworm 64-bit (Debian 12) or newer"
    )
    assert not (tmp_path / "p").exists()  # nothing written before the checks pass
    bad = _install("--frobnicate")
    assert (
        bad.returncode == 2 and bad.stderr.strip() == "install.sh: unknown option '--frobnicate' (see --help)"
    )
    helped = _install("--help")
    assert helped.returncode == 0 and "--service" in helped.stdout


@pytest.mark.slow
def test_installer_installs_a_working_toolkit_twice(tmp_path: Path) -> None:
    prefix = tmp_path / "edge-toolkit"
    first = _install("--prefix", str(prefix), timeout=900)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "creating" in first.stdout and "installed: edge-toolkit 0.1.0, ai-edge-litert" in first.stdout
    cfg = (prefix / "venv" / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in cfg  # apt's picamera2 stays importable
    demo = subprocess.run(
        [str(prefix / "venv" / "bin" / "toolkit"), "demo", "--max-frames", "5", "--headless", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert demo.returncode == 0, demo.stderr
    second = _install("--prefix", str(prefix), timeout=900)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"reusing {prefix}/venv" in second.stdout
    freeze = subprocess.run(
        [str(prefix / "venv" / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.lower()
    assert "tensorflow" not in freeze and "keras==" not in freeze
