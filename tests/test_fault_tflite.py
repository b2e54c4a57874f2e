"""Hostile .tflite files (issue 15, finding 1): what crashed LiteRT's allocate_tensors is refused with exit 2.

The two reproductions are made here from the shipped behaviour model, by finding the fields with the flatbuffer
reader (the issue's byte offsets, 76264 and 65568, are where these fields sit in the file it was filed against):

* (a) the zero point of an int8 tensor feeding BATCH_MATMUL set to -3221225472 (SIGSEGV in LiteRT);
* (b) the vtable offset of an int8 ADD output's quantization table zeroed: no scale, no zero point (SIGABRT).

Two layers refuse them: the Python checks (toolkit.runtime.tflite_check) before anything native runs, and the
probe (toolkit.runtime.probe) that loads a not-yet-trusted file in a child process first.
"""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error, run_cli

from toolkit.errors import UsageError
from toolkit.runtime import Runner, select_backend
from toolkit.runtime.probe import check_loadable
from toolkit.runtime.tflite_file import read_model_bytes, read_model_file

BEHAVIOUR = REPO / "models" / "behaviour" / "behaviour_int8.tflite"


def _fields(data: bytes) -> tuple[int, int]:
    """(position of the zero point of an int8 BATCH_MATMUL input, position of the soffset of an int8 ADD output's
    quantization table), preferring the tensors of the issue's file."""
    from ai_edge_litert import schema_py_generated as schema

    model = read_model_file(BEHAVIOUR)
    graph = schema.Model.GetRootAs(bytearray(data), 0).Subgraphs(0)

    def int8(ops: str, side: str) -> list[int]:
        return [
            i
            for op in model.ops
            if op.op == ops
            for i in getattr(op, side)
            if model.tensors[i].dtype == "int8" and not model.tensors[i].constant and model.tensors[i].scales
        ]

    zero_points = [graph.Tensors(i).Quantization()._tab for i in int8("BATCH_MATMUL", "inputs")]
    zero_points = [tab.Vector(tab.Offset(10)) for tab in zero_points]
    tables = [graph.Tensors(i).Quantization()._tab.Pos for i in int8("ADD", "outputs")]
    return (76264 if 76264 in zero_points else zero_points[0]), (65568 if 65568 in tables else tables[0])


@pytest.fixture(scope="module")
def crash_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    data = BEHAVIOUR.read_bytes()
    zero_point, quant_table = _fields(data)
    folder = tmp_path_factory.mktemp("crash")
    a = bytearray(data)
    a[zero_point : zero_point + 8] = struct.pack("<q", -3221225472)
    b = bytearray(data)
    b[quant_table : quant_table + 4] = bytes(4)
    (folder / "a.tflite").write_bytes(a)
    (folder / "b.tflite").write_bytes(b)
    return {"a": folder / "a.tflite", "b": folder / "b.tflite"}


def test_the_python_checks_refuse_both(crash_files: dict[str, Path]) -> None:
    with pytest.raises(UsageError, match=r"zero point -3221225472 outside int8 \[-128, 127\]") as a:
        read_model_file(crash_files["a"])
    with pytest.raises(UsageError, match="int8 tensor used by ADD.* without a scale and zero point") as b:
        read_model_file(crash_files["b"])
    assert "\n" not in str(a.value) + str(b.value)


@pytest.mark.parametrize("name, signal", [("a", "SIGSEGV"), ("b", "SIGABRT")])
def test_the_probe_refuses_what_crashes_litert(
    crash_files: dict[str, Path], name: str, signal: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the Python checks (given the sound file's parse), the probe's child crashes, not this process."""
    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path))
    path = crash_files[name]
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(UsageError, match=f"crashes loading it: {signal} in a probe process") as info:
        check_loadable(path, sha, read_model_file(BEHAVIOUR), select_backend(), "xnnpack")
    assert "\n" not in str(info.value)
    assert not list(tmp_path.glob("probed/*"))  # a crash is not cached as a pass


def test_inspect_and_bench_in_process_exit_2(crash_files: dict[str, Path], tmp_path: Path) -> None:
    for path in crash_files.values():
        assert_one_line_error(run_cli("inspect", path), 2, "not a valid TFLite model")
        bench = run_cli(
            "bench", path, "--in-process", "--runs", "2", "--warmup", "0", "--db", tmp_path / "b.db"
        )
        assert_one_line_error(bench, 2, "not a valid TFLite model")


def test_eval_and_demo_exit_2(crash_files: dict[str, Path], shared: Path, tmp_path: Path) -> None:
    result = run_cli("eval", crash_files["a"], "--data", "eth_ucy:scene=eth,split=test", "--limit", "8")
    assert_one_line_error(result, 2, "zero point -3221225472")
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    for model in ("person_detector/person_detector_int8", "scene_segmenter/scene_segmenter_int8"):
        for suffix in (".tflite", ".json"):
            (zoo / Path(model).name).with_suffix(suffix).write_bytes(
                (REPO / "models" / model).with_suffix(suffix).read_bytes()
            )
    (zoo / "behaviour_int8.json").write_bytes(BEHAVIOUR.with_suffix(".json").read_bytes())
    (zoo / "behaviour_int8.tflite").write_bytes(crash_files["b"].read_bytes())
    demo = run_cli("demo", "--models", zoo, "--headless", "--max-frames", "3")
    assert_one_line_error(demo, 2, "without a scale and zero point")


def test_runner_says_which_check_vouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path / "home"))
    with Runner(
        BEHAVIOUR, num_threads=1
    ) as runner:  # the toolkit's own conversion: its manifest has the sha256
        assert "trusted: sha256 matches its convert manifest behaviour_int8.json" in runner.model_check
        assert runner.describe()["model_check"] == runner.model_check
    copy = tmp_path / "copy.tflite"
    copy.write_bytes(BEHAVIOUR.read_bytes())
    with Runner(copy, num_threads=1) as runner:
        assert "probed in a child process" in runner.model_check
    assert len(list((tmp_path / "home" / "probed").iterdir())) == 1
    from toolkit.runtime import probe

    probe._probed.clear()  # as a new process would start: the probe's verdict is on disk
    with Runner(copy, num_threads=1) as runner:
        assert "probed before (cache)" in runner.model_check
    (tmp_path / "copy.json").write_text(
        json.dumps({"schema": "edge-toolkit/convert-manifest@1", "output": {"sha256": "0" * 64}})
    )
    monkeypatch.setenv("TOOLKIT_MODEL_PROBE", "off")
    with Runner(copy, num_threads=1) as runner:  # a manifest for other content does not vouch for this one
        assert "not probed (TOOLKIT_MODEL_PROBE=off)" in runner.model_check


def test_bad_probe_settings_are_usage_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLKIT_MODEL_PROBE", "sometimes")
    with pytest.raises(UsageError, match="TOOLKIT_MODEL_PROBE='sometimes' is not one of auto, always, off"):
        Runner(BEHAVIOUR)
    monkeypatch.setenv("TOOLKIT_MODEL_PROBE", "always")
    monkeypatch.setenv("TOOLKIT_PROBE_TIMEOUT_S", "nan")
    with pytest.raises(UsageError, match=r"TOOLKIT_PROBE_TIMEOUT_S='nan': give seconds in \(0, 3600\]"):
        Runner(BEHAVIOUR)


def test_every_shipped_and_reference_model_passes_the_checks(shared: Path) -> None:
    """The checks only refuse what no converter writes: the zoo, Coral's and MediaPipe's models all pass."""
    files = sorted(REPO.glob("models/*/*.tflite")) + sorted(shared.glob("models/*/*.tflite"))
    assert len(files) >= 10
    for path in files:
        read_model_bytes(path)


def test_a_seeded_fuzz_sample_never_crashes_the_python_checks() -> None:
    """40 structure-aimed mutants with the probe OFF: the Python checks alone keep every one from crashing.
    (The full run is scripts/fuzz_tflite.py --cases 300 or more, with the probe on.)"""
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "fuzz_tflite.py"),
            "--cases",
            "40",
            "--seed",
            "0",
            "--static-only",
            "--timeout",
            "30",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    summary = json.loads(proc.stdout)
    assert (summary["crash"], summary["hang"]) == (0, 0), summary["findings"]
    assert (
        summary["refused"] >= 20 and summary["refused"] + summary["loaded"] + summary["runtime_error"] == 40
    )
    assert proc.returncode == 0


def test_a_seeded_300_mutant_fuzz_with_the_probe_never_crashes_or_hangs() -> None:
    """The issue's fuzz floor in CI: 300 structure-aimed mutants of the zoo's models (seed 0), the probe on, as
    eval / demo / bench load a file no manifest vouches for: every case is a clean refusal or a working model."""
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "fuzz_tflite.py"),
            "--cases",
            "300",
            "--seed",
            "0",
            "--timeout",
            "30",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=900,
    )
    summary = json.loads(proc.stdout)
    assert (summary["crash"], summary["hang"]) == (0, 0), summary["findings"]
    assert summary["refused"] + summary["loaded"] + summary["runtime_error"] == summary["cases"] == 300
    assert summary["refused"] >= 150 and summary["loaded"] >= 30, summary  # the mutants reach both outcomes
    assert proc.returncode == 0


def test_a_crash_the_python_checks_cannot_see_is_refused_by_the_probe(tmp_path: Path) -> None:
    """Kernel arithmetic is the probe's: every int8 ADD output with a scale of 1e-12 (finite, > 0) makes ADD's
    rescale factor exceed 1, and LiteRT aborts. inspect passes it (nothing executed); --probe, bench --in-process
    (and eval, demo: the same Runner) and plain bench refuse it with exit 2, and nothing crashes."""
    from ai_edge_litert import schema_py_generated as schema

    data, model = read_model_bytes(BEHAVIOUR)
    graph = schema.Model.GetRootAs(bytearray(data), 0).Subgraphs(0)
    mutant = bytearray(data)
    for i in {
        i for op in model.ops if op.op == "ADD" for i in op.outputs if model.tensors[i].dtype == "int8"
    }:
        tab = graph.Tensors(i).Quantization()._tab
        start = tab.Vector(tab.Offset(8))
        mutant[start : start + 4] = struct.pack("<f", 1e-12)
    path = tmp_path / "tiny_scales.tflite"
    path.write_bytes(mutant)
    env = {"TOOLKIT_HOME": str(tmp_path / "home")}
    assert run_cli("inspect", path, env=env).returncode == 0
    assert_one_line_error(run_cli("inspect", "--probe", path, env=env), 2, "SIGABRT in a probe process")
    for mode in ("--in-process", "--no-store"):  # plain bench: its worker dies, then a probe says why
        bench = run_cli("bench", path, mode, "--runs", "2", "--warmup", "0", "--no-store", env=env)
        assert_one_line_error(bench, 2, "SIGABRT in a probe process")


def test_eval_and_demo_say_which_check_vouched(shared: Path, tmp_path: Path) -> None:
    """A .tflite no convert manifest vouches for (here a copy without its manifest): eval notes and demo prints
    that it was probed in a child process; the shipped models, vouched for by their manifests, add no demo line."""
    env = {"TOOLKIT_HOME": str(tmp_path / "home")}
    copy = tmp_path / "behaviour.tflite"
    copy.write_bytes(BEHAVIOUR.read_bytes())
    result = run_cli("eval", copy, "--data", "eth_ucy:scene=eth,split=test", "--limit", "8", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "note: model file: verified in Python; probed in a child process" in result.stdout
    detector = tmp_path / "detector.tflite"
    detector.write_bytes((REPO / "models" / "person_detector" / "person_detector_int8.tflite").read_bytes())
    demo = run_cli("demo", "--headless", "--max-frames", "2", "--detector", detector, env=env)
    assert demo.returncode == 0, demo.stderr[-2000:]
    lines = demo.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith(
        f"demo: detector {detector}: verified in Python; probed"
    ), lines
    shipped = run_cli("demo", "--headless", "--max-frames", "2", env=env)
    assert len(shipped.stdout.strip().splitlines()) == 1, shipped.stdout


def test_inspect_says_which_check_it_did(tmp_path: Path) -> None:
    plain = run_cli("inspect", BEHAVIOUR, "--json", env={"TOOLKIT_HOME": str(tmp_path)})
    assert json.loads(plain.stdout)["model_check"].startswith("verified in Python (nothing executed")
    probed = run_cli("inspect", BEHAVIOUR, "--probe", env={"TOOLKIT_HOME": str(tmp_path)})
    assert (
        "check: verified in Python; probed in a child process" in probed.stdout
    )  # --probe: even a trusted file


def test_a_probe_past_its_time_is_a_one_line_refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that hangs LiteRT: the probe is killed at TOOLKIT_PROBE_TIMEOUT_S and the file refused."""
    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path))
    monkeypatch.setenv("TOOLKIT_PROBE_TIMEOUT_S", "0.001")
    from toolkit.runtime import probe

    monkeypatch.setattr(probe, "_probed", {})  # this content may have passed a probe earlier in this process
    copy = tmp_path / "slow.tflite"
    copy.write_bytes(BEHAVIOUR.read_bytes())
    with pytest.raises(
        UsageError, match=r"did not load and run it within 0.001 s in a probe process"
    ) as info:
        Runner(copy)
    assert "\n" not in str(info.value) and not list(tmp_path.glob("probed/*"))
