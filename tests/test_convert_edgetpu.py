"""`convert --target edgetpu`: the offline report in the manifest, and edgetpu_compiler driven through a scripted
stand-in that prints a log in the real compiler's format (the real one is x86 Debian only and not installed here)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from conftest import assert_one_line_error, require_tf, run_cli

from toolkit.convert.edgetpu_compiler import compile_model, parse_log

# edgetpu_compiler 16's output for Coral's MobileNetV2 (-s adds the operator table).
REAL_LOG = """Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 1141 ms.

Input model: mobilenet_v2_1.0_224_quant.tflite
Input size: 3.39MiB
Output model: mobilenet_v2_1.0_224_quant_edgetpu.tflite
Output size: 3.88MiB
On-chip memory used for caching model parameters: 3.42MiB
On-chip memory remaining for caching model parameters: 4.31MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 66
Operation log: mobilenet_v2_1.0_224_quant_edgetpu.log

Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of the model will \
instead run on the CPU, which is slower. If possible, consider updating your model to use only operations supported \
by the Edge TPU. For details, visit g.co/coral/model-reqs.
Number of operations that will run on Edge TPU: 64
Number of operations that will run on CPU: 2

Operator                       Count      Status

CONV_2D                        35         Mapped to Edge TPU
DEPTHWISE_CONV_2D              17         Mapped to Edge TPU
ADD                            10         Mapped to Edge TPU
AVERAGE_POOL_2D                1          Mapped to Edge TPU
RESHAPE                        1          Mapped to Edge TPU
SOFTMAX                        1          Operation is otherwise supported, but not mapped due to some unspecified limitation
ARG_MAX                        1          Operation not supported
Compilation child process completed within timeout period.
Compilation succeeded!
"""

STAND_IN = '''#!{python}
"""Stand-in edgetpu_compiler: `-s -o OUT_DIR MODEL` -> OUT_DIR/<stem>_edgetpu.tflite + .log, the real log format."""
import os, shutil, sys
args = sys.argv[1:]
if os.environ.get("STANDIN_FAIL"):
    print("ERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'", file=sys.stderr)
    sys.exit(1)
out_dir, model = args[args.index("-o") + 1], args[-1]
stem = os.path.splitext(os.path.basename(model))[0]
shutil.copyfile(os.environ.get("STANDIN_COMPILED") or model, os.path.join(out_dir, stem + "_edgetpu.tflite"))
log = open(os.environ["STANDIN_LOG"]).read().replace("mobilenet_v2_1.0_224_quant", stem)
open(os.path.join(out_dir, stem + "_edgetpu.log"), "w").write(log)
print(log)
'''


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on PATH holding the stand-in compiler."""
    folder = tmp_path / "bin"
    folder.mkdir()
    exe = folder / "edgetpu_compiler"
    exe.write_text(STAND_IN.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "real.log").write_text(REAL_LOG)
    monkeypatch.setenv("STANDIN_LOG", str(tmp_path / "real.log"))
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


def test_parse_log_reads_every_field() -> None:
    report = parse_log(REAL_LOG)
    assert report.version == "16.0.384591198" and report.succeeded
    assert report.on_chip_used_bytes == round(3.42 * 2**20) and report.on_chip_remaining_bytes == round(
        4.31 * 2**20
    )
    assert report.off_chip_bytes == 0 and report.subgraphs == 1 and report.total_ops == 66
    assert (report.edgetpu_ops, report.cpu_ops) == (64, 2)
    assert report.operators[0] == {"op": "CONV_2D", "count": 35, "status": "Mapped to Edge TPU"}
    assert report.operators[-1] == {"op": "ARG_MAX", "count": 1, "status": "Operation not supported"}
    assert len(report.operators) == 7
    empty = parse_log("something else entirely")
    assert not empty.succeeded and empty.version is None and empty.operators == []


@pytest.mark.shared
def test_compile_model_with_the_stand_in(
    stand_in: Path, shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    coral = shared / "models" / "coral-test-data"
    monkeypatch.setenv("STANDIN_COMPILED", str(coral / "mobilenet_v2_1.0_224_quant_edgetpu.tflite"))
    out = tmp_path / "out"
    out.mkdir()
    report = compile_model(
        coral / "mobilenet_v2_1.0_224_quant.tflite", out, str(stand_in / "edgetpu_compiler")
    )
    assert (
        Path(report.output).name == "mobilenet_v2_1.0_224_quant_edgetpu.tflite"
        and Path(report.output).is_file()
    )
    assert report.log and Path(report.log).is_file() and report.edgetpu_ops == 64
    monkeypatch.setenv("STANDIN_FAIL", "1")
    from toolkit.errors import ToolkitError

    with pytest.raises(
        ToolkitError,
        match=r"edgetpu_compiler failed on mobilenet_v2_1.0_224_quant.tflite \(exit 1\): "
        r"ERROR: Didn't find op for builtin opcode 'CONV_2D'",
    ):
        compile_model(coral / "mobilenet_v2_1.0_224_quant.tflite", out, str(stand_in / "edgetpu_compiler"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    require_tf()
    from helpers_tf import calib_npy, tiny_cnn

    tmp = tmp_path_factory.mktemp("tiny")
    return {"model": tiny_cnn(tmp / "tiny.keras"), "calib": calib_npy(tmp / "calib.npy")}


@pytest.mark.tf
def test_convert_target_edgetpu_without_a_compiler(
    tiny: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + "/usr/bin:/bin")
    out = tmp_path / "tiny_int8.tflite"
    proc = run_cli(
        "convert",
        str(tiny["model"]),
        "-o",
        str(out),
        "--calib",
        str(tiny["calib"]),
        "--target",
        "edgetpu",
        "--io",
        "uint8",
    )
    assert proc.returncode == 0, proc.stderr
    assert "Edge TPU (offline check):" in proc.stdout
    assert (
        "edgetpu_compiler not on PATH, so nothing was compiled: install it on an x86-64 Debian" in proc.stdout
    )
    manifest = json.loads(out.with_suffix(".json").read_text())
    edgetpu = manifest["edgetpu"]
    assert edgetpu["compiler"]["found"] is False
    assert edgetpu["ops"] == sum(row["count"] for row in manifest["op_histogram"])
    assert edgetpu["mapped_ops"] >= 1 and edgetpu["parameter_bytes"] > 0
    assert manifest["config"]["target"] == "edgetpu" and manifest["io"] == "uint8"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny_int8.json", "tiny_int8.tflite"]


@pytest.mark.tf
def test_convert_target_edgetpu_runs_the_compiler(
    tiny: dict[str, Path], stand_in: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tiny_int8.tflite"
    proc = run_cli(
        "convert", str(tiny["model"]), "-o", str(out), "--calib", str(tiny["calib"]), "--target", "edgetpu"
    )
    assert proc.returncode == 0, proc.stderr
    compiler = json.loads(out.with_suffix(".json").read_text())["edgetpu"]["compiler"]
    assert compiler["found"] and compiler["version"] == "16.0.384591198" and compiler["edgetpu_ops"] == 64
    assert (
        Path(compiler["output"]) == tmp_path / "tiny_int8_edgetpu.tflite"
        and Path(compiler["output"]).is_file()
    )
    assert Path(compiler["log"]) == tmp_path / "tiny_int8_edgetpu.log"
    # The stand-in copied its input: the toolkit checks the compiled file itself and says nothing was mapped.
    assert compiler["compiled"] is None and "holds no edgetpu-custom-op" in compiler["note"]
    assert (
        "compiled by edgetpu_compiler 16.0.384591198" in proc.stdout
        and "warning: the compiled file" in proc.stdout
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.tf
def test_convert_target_edgetpu_refuses_float(tiny: dict[str, Path], tmp_path: Path) -> None:
    proc = run_cli(
        "convert",
        str(tiny["model"]),
        "-o",
        str(tmp_path / "m.tflite"),
        "--quantize",
        "fp16",
        "--target",
        "edgetpu",
    )
    assert_one_line_error(proc, 2, "--target edgetpu needs --quantize int8")
    assert not list(tmp_path.iterdir())
