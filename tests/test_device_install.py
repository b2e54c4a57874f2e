"""A device install (`pip install .`, no extras) has no TensorFlow, and inspect / runtime / --help work there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def device_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("device") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # Install from a copy of the tracked tree so build artifacts never land in the checkout.
    src = tmp_path_factory.mktemp("src") / "edge-toolkit"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for rel in files:
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    proc = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(src)], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return venv


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "TOOLKIT_SHARED": os.environ.get("TOOLKIT_SHARED", str((REPO / ".." / "shared").resolve())),
    }
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_device_install_has_no_tensorflow(device_venv: Path, tmp_path: Path) -> None:
    listing = _run(device_venv, "pip", "list", "--format=freeze", cwd=tmp_path).stdout.lower()
    assert "ai-edge-litert==" in listing and "opencv-python-headless==" in listing
    for heavy in ("tensorflow", "keras==", "tf-keras", "torch"):
        assert heavy not in listing, listing
    probe = _run(
        device_venv,
        "python",
        "-c",
        "import importlib.util as u; print(u.find_spec('tensorflow'))",
        cwd=tmp_path,
    )
    assert probe.stdout.strip() == "None"


def test_help_inspect_and_runtime_work_on_device_install(
    device_venv: Path, tmp_path: Path, shared: Path
) -> None:
    assert _run(device_venv, "toolkit", "--help", cwd=tmp_path).returncode == 0
    model = shared / "models" / "mediapipe-0.10.14" / "selfie_segmentation.tflite"
    inspect = _run(device_venv, "toolkit", "inspect", str(model), cwd=tmp_path)
    assert inspect.returncode == 0, inspect.stderr
    assert "CONV_2D" in inspect.stdout
    code = (
        "import numpy as np, sys\nfrom toolkit.runtime import Runner\n"
        f"r = Runner({str(model)!r})\nout = r.run(np.zeros((1, 256, 256, 3), np.float32))\n"
        "print(r.backend.name, list(out))\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    run = _run(device_venv, "python", "-c", code, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ai_edge_litert")


def test_readme_demo_command_runs_on_the_device_install(device_venv: Path, tmp_path: Path) -> None:
    # The README's first command, from a directory outside the checkout: the shipped zoo comes with the package,
    # the default source is the built-in synthetic street, nothing needs a camera, a display or TensorFlow.
    demo = _run(
        device_venv, "toolkit", "demo", "--max-frames", "30", "--record", "demo.webm", "--json", cwd=tmp_path
    )
    assert demo.returncode == 0, demo.stderr
    import json

    summary = json.loads(demo.stdout)
    assert summary["frames"] == 30 and summary["stopped"] == "max_frames"
    import cv2

    video = cv2.VideoCapture(str(tmp_path / "demo.webm"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 30
    ok, frame = video.read()
    video.release()
    assert ok and frame.shape == (360, 480, 3)
