"""How ``convert`` (and every artifact + manifest writer) puts files on disk (issue 15, finding 5 and the full-disk
part of finding 6): model first and manifest last, temporary files removed on every exit path (SIGTERM too) and
swept after a SIGKILL by the next run, and a full disk reported as one line with exit 2.

The unit tests need no TensorFlow; the ``convert`` ones convert a tiny Keras model (tests/helpers_tf.py).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, CliResult, assert_one_line_error, require_tf

from toolkit import fileio
from toolkit.errors import UsageError
from toolkit.fileio import AtomicFiles, atomic_path, sweep_stale, write_bytes_atomic

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _size_limited(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _python(script: str, *args: str, env: dict[str, str] | None = None, limit: int | None = None):
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        env={**ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_size_limited(limit) if limit is not None else None,
    )


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ours(tmpdir: Path) -> list[str]:
    """The toolkit's folders in ``tmpdir`` (TensorFlow's autograph leaves __autograph_generated_file*.py files there
    when killed: its own, named without a pid, so they cannot be told stale)."""
    return sorted(p.name for p in tmpdir.glob("toolkit-*"))


def _partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


# -- AtomicFiles: model first, manifest last ----------------------------------------------------------------------


def test_files_land_model_first_and_the_old_manifest_goes_before_anything_moves(tmp_path, monkeypatch):
    model, manifest = tmp_path / "m.tflite", tmp_path / "m.json"
    model.write_bytes(b"old model")
    manifest.write_text('{"sha": "old"}')
    events: list[str] = []
    real_replace, real_unlink = os.replace, Path.unlink

    def replace(src, dst):
        events.append(f"replace {Path(dst).name}")
        return real_replace(src, dst)

    def unlink(self, missing_ok=False):
        if ".partial-" not in self.name:
            events.append(f"unlink {self.name}")
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(fileio.os, "replace", replace)
    monkeypatch.setattr(Path, "unlink", unlink)
    with AtomicFiles(manifest=manifest) as files:
        files.add(model).write_bytes(b"new model")
        files.manifest_tmp.write_text('{"sha": "new"}')
        assert model.read_bytes() == b"old model" and manifest.exists()  # nothing moves inside the block
    assert events == ["unlink m.json", "replace m.tflite", "replace m.json"]
    assert model.read_bytes() == b"new model" and manifest.read_text() == '{"sha": "new"}'
    assert _partials(tmp_path) == []


@pytest.mark.parametrize("interrupt_at", [1, 2])
def test_an_interruption_between_the_renames_never_leaves_a_manifest_of_another_model(
    tmp_path, monkeypatch, interrupt_at
):
    model, manifest = tmp_path / "m.tflite", tmp_path / "m.json"
    model.write_bytes(b"old model")
    manifest.write_text(json.dumps({"sha256": hashlib.sha256(b"old model").hexdigest()}))
    calls = {"n": 0}
    real_replace = os.replace

    def replace(src, dst):
        calls["n"] += 1
        if calls["n"] == interrupt_at:
            raise KeyboardInterrupt  # a signal between two renames
        return real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt), AtomicFiles(manifest=manifest) as files:
        files.add(model).write_bytes(b"new model")
        files.manifest_tmp.write_text(json.dumps({"sha256": hashlib.sha256(b"new model").hexdigest()}))
    if manifest.exists():
        assert json.loads(manifest.read_text())["sha256"] == _sha(model)
    assert _partials(tmp_path) == []


def test_a_failed_block_leaves_the_previous_files_and_nothing_partial(tmp_path):
    model, manifest = tmp_path / "m.tflite", tmp_path / "m.json"
    model.write_bytes(b"old model")
    manifest.write_text("{}")
    with pytest.raises(RuntimeError), AtomicFiles(manifest=manifest) as files:
        files.add(model).write_bytes(b"half")
        raise RuntimeError("parity failed")
    assert model.read_bytes() == b"old model" and manifest.read_text() == "{}"
    assert _partials(tmp_path) == []


def test_enospc_in_the_block_is_one_no_space_error_naming_the_target(tmp_path):
    with pytest.raises(UsageError, match=r"no space left on device writing .*m\.json"):
        with AtomicFiles(manifest=tmp_path / "m.json") as files:
            files.add(tmp_path / "m.tflite").write_bytes(b"model")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(files.manifest_tmp))
    assert list(tmp_path.iterdir()) == []


def test_a_real_file_size_limit_is_the_same_error_and_leaves_nothing(tmp_path):
    script = (
        "import sys\n"
        "from toolkit.errors import UsageError\n"
        "from toolkit.fileio import write_bytes_atomic\n"
        "try:\n"
        "    write_bytes_atomic(sys.argv[1], b'x' * 100_000)\n"
        "except UsageError as exc:\n"
        "    print(exc)\n"
    )
    proc = _python(script, str(tmp_path / "big.bin"), limit=10_000)
    assert proc.stdout.startswith(f"no space left on device writing {tmp_path / 'big.bin'}"), proc.stderr
    assert list(tmp_path.iterdir()) == []


# -- SIGKILL leftovers are swept by the next run; SIGTERM cleans up at once -----------------------------------------


def test_stale_partials_of_dead_processes_are_swept_by_the_next_writer(tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    stale = tmp_path / f".m.tflite.partial-{dead}-abcd1234.tflite"
    other_stale = tmp_path / f".other.json.partial-{dead}-zz.json"
    live = tmp_path / f".m.tflite.partial-{alive}-efgh5678.tflite"
    foreign = tmp_path / ".m.tflite.partial-notapid.tflite"
    for path in (stale, other_stale, live, foreign):
        path.write_bytes(b"partial")
    proc = _python(
        "import sys; from toolkit.fileio import write_bytes_atomic; write_bytes_atomic(sys.argv[1], b'm')",
        str(tmp_path / "m.tflite"),
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.tflite", live.name, foreign.name])


def test_stale_temp_folders_of_dead_processes_are_swept(tmp_path):
    dead = _dead_pid()
    stale = tmp_path / f"toolkit-convert-{dead}-abc"
    (stale / "saved_model").mkdir(parents=True)
    (stale / "saved_model" / "saved_model.pb").write_bytes(b"x")
    live = tmp_path / f"toolkit-convert-{os.getppid()}-def"
    live.mkdir()
    unrelated = tmp_path / "toolkit-convert-xyz"
    unrelated.mkdir()
    script = "from toolkit.fileio import temp_folder\nwith temp_folder('toolkit-convert') as tmp:\n    print(tmp)\n"
    proc = _python(script, env={"TMPDIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"toolkit-convert-\d+-\w+", Path(proc.stdout.strip()).name), proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, unrelated.name])


def test_sweep_keeps_its_own_and_live_processes_files(tmp_path):
    mine = tmp_path / f".a.partial-{os.getpid()}-x"
    mine.write_bytes(b"")
    assert sweep_stale(tmp_path, fileio.PARTIAL_PATTERN, once=False) == []
    assert mine.exists()


def test_sigterm_during_a_write_removes_the_temporary_files(tmp_path):
    script = (
        "import sys, time\n"
        "from toolkit.fileio import AtomicFiles, exit_on_sigterm\n"
        "with exit_on_sigterm(), AtomicFiles(manifest=sys.argv[1] + '.json') as files:\n"
        "    files.add(sys.argv[1]).write_bytes(b'model')\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
    )
    out = tmp_path / "m.tflite"
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(out)], cwd=REPO, env=ENV, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert len(_partials(tmp_path)) == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list(tmp_path.iterdir()) == []


# -- toolkit convert --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    require_tf()
    from helpers_tf import tiny_cnn

    tmp = tmp_path_factory.mktemp("tiny_write")
    model = tiny_cnn(tmp / "tiny.keras")
    previous = tmp / "previous"
    previous.mkdir()
    _convert(model, previous / "t.tflite")
    return {"model": model, "previous": previous}


def _convert(
    model: Path, out: Path, *extra: str, env: dict[str, str] | None = None, limit: int | None = None
):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "toolkit",
            "convert",
            str(model),
            "-o",
            str(out),
            "--quantize",
            "fp32",
            *extra,
        ],
        cwd=REPO,
        env={**ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_size_limited(limit) if limit is not None else None,
    )
    return proc


def _copy_previous(tiny: dict[str, Path], folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in ("t.tflite", "t.json"):
        data = (tiny["previous"] / name).read_bytes()
        (folder / name).write_bytes(data)
        files[name] = data
    return files


def _assert_pair(folder: Path) -> None:
    """The manifest on disk describes the model beside it."""
    manifest = json.loads((folder / "t.json").read_text())
    assert manifest["output"]["sha256"] == _sha(folder / "t.tflite")


@pytest.mark.tf
def test_convert_renames_the_model_before_the_manifest(tiny, tmp_path, monkeypatch, capsys):
    """An interruption between the two renames (here: after the first) leaves no manifest of another model."""
    from toolkit.cli import main

    out_dir = tmp_path / "out"
    _copy_previous(tiny, out_dir)
    real_replace = os.replace
    into_out: list[str] = []

    def replace(src, dst):
        if Path(dst).parent == out_dir:
            into_out.append(Path(dst).name)
            if len(into_out) == 2:
                raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    code = main(
        ["convert", str(tiny["model"]), "-o", str(out_dir / "t.tflite"), "--quantize", "fp32", "--seed", "7"]
    )
    assert code == 130 and into_out == ["t.tflite", "t.json"]
    if (out_dir / "t.json").exists():
        _assert_pair(out_dir)
    assert _partials(out_dir) == []


@pytest.mark.tf
def test_convert_full_disk_at_the_manifest_is_exit_2_and_keeps_the_previous_pair(
    tiny, tmp_path, monkeypatch, capsys
):
    from toolkit.cli import main

    out_dir = tmp_path / "out"
    before = _copy_previous(tiny, out_dir)
    real_write_text = Path.write_text

    def write_text(self, *args, **kwargs):
        if ".partial-" in self.name and self.name.startswith(".t.json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    code = main(
        ["convert", str(tiny["model"]), "-o", str(out_dir / "t.tflite"), "--quantize", "fp32", "--seed", "7"]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "no space left on device writing" in lines[0] and "t.json" in lines[0]
    assert {name: (out_dir / name).read_bytes() for name in before} == before
    assert _partials(out_dir) == []


@pytest.mark.tf
def test_convert_full_temporary_folder_is_exit_2_and_leaves_nothing(tiny, tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    out_dir = tmp_path / "out"
    proc = _convert(tiny["model"], out_dir / "t.tflite", env={"TMPDIR": str(tmpdir)}, limit=20_000)
    assert_one_line_error(
        CliResult(proc.returncode, proc.stdout, proc.stderr), 2, "no space left on device writing"
    )
    assert "TMPDIR" in proc.stderr and "internal error" not in proc.stderr
    assert not out_dir.exists() or list(out_dir.iterdir()) == []
    assert list(tmpdir.iterdir()) == []


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


@pytest.mark.tf
@pytest.mark.slow
def test_sigkill_during_convert_keeps_the_previous_pair_and_the_next_run_sweeps(tiny, tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    out_dir = tmp_path / "out"
    before = _copy_previous(tiny, out_dir)
    args = [
        sys.executable,
        "-m",
        "toolkit",
        "convert",
        str(tiny["model"]),
        "-o",
        str(out_dir / "t.tflite"),
        "--quantize",
        "fp32",
        "--seed",
        "7",
        "--parity-samples",
        "5000",
    ]
    env = {**ENV, "TMPDIR": str(tmpdir)}

    def run_and_kill(ready) -> None:
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_for(ready, proc)
            proc.kill()
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert {name: (out_dir / name).read_bytes() for name in before} == before  # the previous pair, intact

    # 1: killed while converting: its SavedModel folder stays in TMPDIR.
    run_and_kill(lambda: any(tmpdir.glob("toolkit-convert-*")))
    assert len(list(tmpdir.glob("toolkit-convert-*"))) == 1 and _partials(out_dir) == []
    # 2: killed while checking parity: it swept run 1's folder; its model and manifest stay as hidden partials.
    run_and_kill(lambda: len(_partials(out_dir)) == 2)
    assert _ours(tmpdir) == [] and len(_partials(out_dir)) == 2
    # 3: completes, and sweeps run 2's partial files.
    proc = _convert(tiny["model"], out_dir / "t.tflite", env={"TMPDIR": str(tmpdir)})
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out_dir.iterdir()) == ["t.json", "t.tflite"]
    assert _ours(tmpdir) == []
    _assert_pair(out_dir)


@pytest.mark.tf
def test_sigterm_during_convert_leaves_the_previous_pair_and_nothing_partial(tiny, tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    out_dir = tmp_path / "out"
    before = _copy_previous(tiny, out_dir)
    args = [
        sys.executable,
        "-m",
        "toolkit",
        "convert",
        str(tiny["model"]),
        "-o",
        str(out_dir / "t.tflite"),
        "--quantize",
        "fp32",
        "--parity-samples",
        "5000",
    ]
    proc = subprocess.Popen(
        args, cwd=REPO, env={**ENV, "TMPDIR": str(tmpdir)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_for(lambda: len(_partials(out_dir)) == 2, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    assert {name: (out_dir / name).read_bytes() for name in before} == before
    assert _partials(out_dir) == [] and _ours(tmpdir) == []


def test_atomic_path_still_replaces_a_single_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    write_bytes_atomic(tmp_path / "b.bin", b"b")
    assert target.read_text() == "new" and (tmp_path / "b.bin").read_bytes() == b"b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]
