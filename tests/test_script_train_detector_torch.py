"""scripts/train_detector_torch.py: the detector recipe through DetectorItems and forked workers, any Keras backend
(here the CI's TensorFlow backend; on a lent GPU machine PyTorch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, require_tf

pytestmark = [pytest.mark.shared, pytest.mark.tf, pytest.mark.slow]

RECIPE = """
kind = "detector"
[train]
data = "coco128:fold=0,folds=4,split=train,limit=8"
val_data = "synthetic:split=val,scenes=1,frames=10,every=5"
epochs = 3
batch_size = 4
learning_rate = 0.001
[model]
input_shape = [96, 128, 3]
[task]
extra_data = "synthetic:split=train,seed=700,scenes=2,frames=10,every=5"
extra_per_epoch = 4
paste = 0.5
paste_polygons = "coco128"
paste_max_height = 80.0
"""


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    env = {**os.environ, "TOOLKIT_HOME": str(tmp_path / "home")}
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "train_detector_torch.py"),
            "--config",
            str(recipe),
            "--workers",
            "2",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_trains_the_recipe_and_writes_the_trainers_manifest(shared: Path, tmp_path: Path) -> None:
    require_tf()
    out = tmp_path / "det.keras"
    result = _run(tmp_path, "-o", str(out), "--verbose", "0")
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads(out.with_suffix(".train.json").read_text())
    assert out.is_file() and manifest["kind"] == "detector" and manifest["epochs_run"] == 3
    assert manifest["train_config"]["data"] == "coco128:fold=0,folds=4,split=train,limit=8"
    assert manifest["task_options"]["paste"] == 0.5 and manifest["data"]["pasted_people"] > 0
    assert manifest["planned_epochs"] == 3 and manifest["deadline_s"] is None


def test_prepare_only_renders_the_scenes_and_trains_nothing(shared: Path, tmp_path: Path) -> None:
    require_tf()
    out = tmp_path / "det.keras"
    result = _run(tmp_path, "-o", str(out), "--prepare-only")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rendered the synthetic scenes" in result.stdout and not out.exists()
    assert any((tmp_path / "home").rglob("frames.npy"))


def test_a_recipe_of_another_kind_is_one_line_and_exit_2(tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text('kind = "segmenter"\n')
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "train_detector_torch.py"),
            "--config",
            str(recipe),
            "-o",
            str(tmp_path / "x.keras"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "detector recipes" in result.stderr and "Traceback" not in result.stderr
