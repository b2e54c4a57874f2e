"""toolkit train: reproducible first epoch, tf.distribute mirrored on two logical CPUs, resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error

pytestmark = [pytest.mark.tf, pytest.mark.slow, pytest.mark.shared]

TINY = [
    "--data",
    "mnist:split=train,limit=256",
    "--val-data",
    "mnist:split=val,limit=128",
    "--batch-size",
    "64",
]


def _manifest(out: Path) -> dict:
    return json.loads(out.with_suffix(".train.json").read_text())


def test_same_seed_same_first_epoch_loss(cli, shared, tmp_path: Path) -> None:
    losses = []
    for i in range(2):
        out = tmp_path / f"run{i}" / "c.keras"
        result = cli("train", "classifier", "-o", out, "--epochs", "1", "--seed", "3", *TINY)
        assert result.returncode == 0, result.stderr[-2000:]
        losses.append(_manifest(out)["first_epoch_loss"])
        assert _manifest(out)["train_config"]["deterministic"] is True  # the default: TF op determinism on
    assert losses[0] == losses[1]


def test_model_and_manifest_land_together(shared, tmp_path: Path, monkeypatch, capsys) -> None:
    """The manifest names the model beside it; a failure writing it (here a full disk) leaves neither file and no
    temporary files, not a new model beside the previous run's manifest (issue 15)."""
    import errno
    import hashlib

    import toolkit.train.trainer as trainer
    from toolkit.cli import main

    out = tmp_path / "c.keras"
    assert main(["train", "classifier", "-o", str(out), "--epochs", "1", *TINY]) == 0
    assert _manifest(out)["model"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    before = {p.name: p.read_bytes() for p in (out, out.with_suffix(".train.json"))}

    def full_disk(obj):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(trainer, "json_text", full_disk)
    capsys.readouterr()
    assert main(["train", "classifier", "-o", str(out), "--epochs", "1", "--seed", "5", *TINY]) == 2
    assert "no space left on device" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (out, out.with_suffix(".train.json"))} == before
    assert not [p.name for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_mirrored_strategy_on_two_logical_cpus(cli, shared, tmp_path: Path) -> None:
    out = tmp_path / "m.keras"
    # Also the speed trade of long recipes (op determinism off), recorded in the manifest.
    result = cli(
        "train",
        "classifier",
        "-o",
        out,
        "--epochs",
        "1",
        "--strategy",
        "mirrored",
        "--devices",
        "2",
        *TINY,
        "--set",
        "train.deterministic=false",
        "--json",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads(result.stdout)
    assert manifest["train_config"]["deterministic"] is False
    assert manifest["strategy"] == {"name": "MirroredStrategy", "replicas": 2}
    assert manifest["first_epoch_loss"] == manifest["first_epoch_loss"]  # finite, not NaN
    assert out.is_file() and (out.with_suffix(".run") / "logs").is_dir()


def test_interrupted_run_resumes_where_it_stopped(shared, tmp_path: Path) -> None:
    out = tmp_path / "r.keras"
    run_dir = out.with_suffix(".run")
    cmd = [
        sys.executable,
        "-m",
        "toolkit",
        "train",
        "classifier",
        "-o",
        str(out),
        "--epochs",
        "4",
        *TINY,
        "--patience",
        "0",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # preexec: a test run started in the background (`cmd &`) inherits SIGINT ignored; a terminal would not
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    history = run_dir / "history.csv"
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:  # wait until the first epoch is logged, then interrupt
        if history.is_file() and len(history.read_text().splitlines()) >= 2:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("training finished before it could be interrupted (machine too fast for this check)")
    assert proc.returncode == 1 and "--resume" in err
    assert not out.exists()  # nothing half-written
    done = len(history.read_text().splitlines()) - 1
    resumed = subprocess.run(
        cmd + ["--resume", "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    manifest = json.loads(resumed.stdout)
    assert manifest["epochs_run"] == 4 - done  # only the remaining epochs ran
    assert out.is_file()


def test_bad_training_input_is_one_line_exit_2(cli, tmp_path: Path) -> None:
    out = tmp_path / "x.keras"
    assert_one_line_error(cli("train", "clasifier", "-o", out), 2, "invalid choice")
    assert_one_line_error(cli("train", "classifier", "-o", tmp_path / "x.h5"), 2, ".keras")
    assert_one_line_error(cli("train", "classifier", "-o", out, "--resume"), 2, "no backup")
    assert_one_line_error(
        cli("train", "classifier", "-o", out, "--set", "model.widht=2"), 2, "did you mean 'width'"
    )
    assert_one_line_error(
        cli("train", "classifier", "-o", out, "--data", "mnist:splt=train"), 2, "did you mean"
    )
    cfg = tmp_path / "c.toml"
    cfg.write_text("[train]\nepochz = 3\n")
    assert_one_line_error(cli("train", "classifier", "-o", out, "--config", cfg), 2, "did you mean 'epochs'")
    cfg.write_text("[train\n")
    assert_one_line_error(cli("train", "classifier", "-o", out, "--config", cfg), 2, "not valid TOML")
    assert not out.exists()
