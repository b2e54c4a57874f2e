"""The device install and the demo run on an emulated 64-bit Raspberry Pi 4 (deploy/raspberry-pi/emulate.sh).

A Debian Bookworm arm64 userland under qemu user-mode emulation with a Cortex-A72 CPU model (the Pi 4's core, no
LSE atomics or dot-product instructions): the device requirements resolve to aarch64 wheels, Debian's pip installs
them with the project's wheel, then ``toolkit demo --max-frames 30 --record out.mp4`` and ``toolkit bench`` run.
Timings under emulation mean nothing; this checks the install and that the models run with the Pi's instructions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from conftest import REPO

SCRIPT = REPO / "deploy" / "raspberry-pi" / "emulate.sh"
CANNOT_RUN = 77  # the script's exit code when the emulator cannot start on this machine


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "edge-toolkit" / "pi-emu-tests"


@pytest.mark.slow
def test_demo_and_bench_run_on_an_emulated_pi4() -> None:
    work = _cache_dir()  # the sysroot is reused between runs; venv, wheels and outputs are made fresh
    env = os.environ | {"PI_EMU_DIR": str(work), "HOST_PYTHON": sys.executable, "PI_CPU": "cortex-a72"}
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=1500, env=env)
    if proc.returncode == CANNOT_RUN:
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "emulated CPU cortex-a72: aarch64 3.11" in out
    assert "ai-edge-litert 1.4.0" in out  # the aarch64 line of the device requirements
    demo = json.loads((work / "out" / "demo.json").read_text())
    assert demo["frames"] == 30 and demo["stopped"] == "max_frames" and demo["record_frames"] == 30
    assert set(demo["models"]) == {"detector", "segmenter", "behaviour"}
    video = cv2.VideoCapture(str(work / "out" / "out.mp4"))
    frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = video.read()
    video.release()
    assert frames == 30 and ok and frame.shape == (360, 480, 3)
    assert "person_detector_int8.tflite  int8    1" in out and "(aarch64" in out
    assert "stored 1 result(s)" in out


def test_emulation_reports_a_missing_emulator_with_its_install_step(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("bash", "dirname", "mkdir", "id"):
        found = shutil.which(tool)
        assert found
        (bindir / tool).symlink_to(found)
    env = {"PATH": str(bindir), "HOME": str(tmp_path), "PI_EMU_DIR": str(tmp_path / "emu")}
    proc = subprocess.run(
        [str(bindir / "bash"), str(SCRIPT)], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == CANNOT_RUN
    assert proc.stderr.strip() == (
        "pi-emu: cannot emulate here: qemu-aarch64-static not found (apt-get install qemu-user-static)"
    )
