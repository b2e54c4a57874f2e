"""The Edge TPU delegate path without an Edge TPU: exit 3 naming the missing piece and its install step, exit 2
for a compiled model run on the CPU, and --fallback cpu as the only (announced) way to continue on the CPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, run_cli

from toolkit.errors import DeviceUnavailable, UsageError
from toolkit.runtime import Runner

DETECTOR = REPO / "models" / "person_detector" / "person_detector_int8.tflite"
# What libedgetpu does when no Edge TPU is connected: the plugin reports an error and returns no delegate.
NO_DEVICE_SOURCE = """
#include <stddef.h>
void* tflite_plugin_create_delegate(char** keys, char** values, size_t n, void (*report)(const char*)) {
  if (report) report("Failed to open any Edge TPU device");
  return NULL;
}
void tflite_plugin_destroy_delegate(void* d) {}
"""


@pytest.fixture(scope="module")
def libedgetpu_without_device(tmp_path_factory) -> Path:
    """A folder with a stand-in libedgetpu.so.1 that loads but finds no device (built with the C compiler)."""
    folder = tmp_path_factory.mktemp("libedgetpu")
    (folder / "plugin.c").write_text(NO_DEVICE_SOURCE)
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is needed (scripts/test.sh installs gcc)"
    subprocess.run(
        [cc, "-shared", "-fPIC", "-o", str(folder / "libedgetpu.so.1"), str(folder / "plugin.c")],
        check=True,
        timeout=60,
    )
    return folder


def _compiled(shared: Path) -> Path:
    return shared / "models" / "coral-test-data" / "mobilenet_v2_1.0_224_quant_edgetpu.tflite"


def test_missing_library_is_exit_3_with_the_install_step() -> None:
    proc = run_cli("bench", str(DETECTOR), "--delegate", "edgetpu", "--runs", "3", "--no-store")
    assert proc.returncode == 3 and proc.stdout == ""
    line = proc.stderr.strip()
    assert "\n" not in line
    assert line.startswith(
        "toolkit bench: error: Edge TPU runtime libedgetpu.so.1 not found: install libedgetpu1-std"
    )
    assert "install libedgetpu1-std from Coral's apt repository" in line and line.endswith(
        "or pass --fallback cpu to run on the CPU instead"
    )
    demo = run_cli("demo", "--max-frames", "3", "--headless", "--delegate", "edgetpu")
    assert demo.returncode == 3 and "libedgetpu.so.1 not found" in demo.stderr
    assert "Exception ignored" not in demo.stderr + proc.stderr  # no half-built delegate tracebacks


def test_missing_device_is_exit_3_saying_how_to_connect_it(libedgetpu_without_device: Path) -> None:
    env = {"LD_LIBRARY_PATH": f"{libedgetpu_without_device}:{os.environ.get('LD_LIBRARY_PATH', '')}"}
    proc = run_cli("bench", str(DETECTOR), "--delegate", "edgetpu", "--runs", "3", "--no-store", env=env)
    assert proc.returncode == 3, proc.stderr
    assert (
        "no Edge TPU found by libedgetpu.so.1" in proc.stderr
        and "Failed to open any Edge TPU device" in proc.stderr
    )
    assert "lsusb shows 1a6e:089a or 18d1:9302" in proc.stderr


@pytest.mark.shared
def test_compiled_model_on_the_cpu_is_a_usage_error(shared: Path) -> None:
    with pytest.raises(
        UsageError,
        match="is compiled for the Edge TPU .* run it with --delegate edgetpu, or run "
        "its CPU original .*mobilenet_v2_1.0_224_quant.tflite",
    ):
        Runner(_compiled(shared))
    proc = run_cli("bench", str(_compiled(shared)), "--runs", "3", "--no-store")
    assert proc.returncode == 2


@pytest.mark.shared
def test_fallback_cpu_runs_the_cpu_original_and_says_so(shared: Path, tmp_path: Path) -> None:
    runner = Runner(_compiled(shared), delegate="edgetpu", fallback="cpu")
    assert runner.path.name == "mobilenet_v2_1.0_224_quant.tflite" and runner.delegate == "xnnpack"
    assert runner.fallback_reason and runner.fallback_reason.startswith(
        "edgetpu unavailable, running mobilenet_v2_1.0_224_quant.tflite on the CPU"
    )
    runner.close()
    proc = run_cli(
        "bench",
        str(_compiled(shared)),
        "--delegate",
        "edgetpu",
        "--fallback",
        "cpu",
        "--runs",
        "3",
        "--no-store",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    assert result["model_name"] == "mobilenet_v2_1.0_224_quant.tflite" and result["fallback"]
    text = run_cli(
        "bench",
        str(_compiled(shared)),
        "--delegate",
        "edgetpu",
        "--fallback",
        "cpu",
        "--runs",
        "3",
        "--no-store",
    )
    assert "FALLBACK (--fallback cpu): edgetpu unavailable" in text.stdout
    # A compilation without its CPU original beside it cannot fall back.
    lonely = tmp_path / "m_edgetpu.tflite"
    shutil.copy(_compiled(shared), lonely)
    with pytest.raises(
        DeviceUnavailable,
        match=r"--fallback cpu needs the CPU original of m_edgetpu.tflite beside it "
        r"\(m.tflite\)",
    ):
        Runner(lonely, delegate="edgetpu", fallback="cpu")


def test_demo_fallback_reports_every_model_it_moved() -> None:
    proc = run_cli(
        "demo",
        "--max-frames",
        "5",
        "--headless",
        "--no-pacing",
        "--delegate",
        "edgetpu",
        "--fallback",
        "cpu",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["frames"] == 5 and summary["delegate"] == "edgetpu"
    assert set(summary["fallback"]) == {"detector", "behaviour", "segmenter"}
    plain = run_cli("demo", "--max-frames", "3", "--headless", "--no-pacing", "--json")
    assert json.loads(plain.stdout)["fallback"] is None
