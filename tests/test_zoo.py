"""The shipped zoo: every int8 model is fully int8 (documented float ops aside), agrees with the Keras model it
came from (its manifest's parity on held-back samples), has a card, and runs through the device runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from toolkit.inspect.analysis import analyze
from toolkit.runtime import Runner
from toolkit.runtime.tflite_file import read_model_file

ZOO = REPO / "models"
MODELS = sorted(ZOO.glob("*/*_int8.tflite"))
# Parity of the trained int8 model with its Keras model on held-back calibration samples (from the manifest):
# mean |error| within this fraction of the Keras output range.
MEAN_PARITY = 0.02


def test_zoo_is_not_empty() -> None:
    assert MODELS, "no int8 models in models/: run toolkit zoo build"


@pytest.mark.parametrize("path", MODELS, ids=[p.name for p in MODELS])
def test_shipped_model(path: Path) -> None:
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["output"]["sha256"] == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    assert manifest["mode"] == "int8" and manifest["calibration"]["count"] > 0
    info = analyze(read_model_file(path))
    assert info["precision"] == "int8"
    assert not [e for e in info["non_int8_ops"] if not e["documented"]]
    assert path.stat().st_size < 2 * 1024 * 1024  # shipped models stay small
    for name, err in manifest["parity"]["outputs"].items():
        low, high = err["keras_output_range"]
        assert err["mean_abs_error"] <= MEAN_PARITY * max(high - low, 1e-6), (name, err)
    with Runner(path, num_threads=1) as runner:
        feeds = {n: np.zeros(s.shape, np.float32) for n, s in runner.inputs.items()}
        outputs = runner.run(**feeds)
        assert set(outputs) == {o["signature_name"] for o in manifest["outputs"]}
    card = path.parent / "README.md"
    assert card.is_file() and path.name in card.read_text()
    assert (path.parent / "eval.json").is_file() and (path.parent / "recipe.toml").is_file()


RECIPES = sorted(ZOO.glob("*/recipe.toml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.parent.name for p in RECIPES])
def test_shipped_model_was_trained_with_its_recipe(recipe: Path) -> None:
    # Provenance: the training manifest next to the model records the recipe's [train] and [task] settings, so a
    # recipe edited without retraining (or a model trained with extra --set overrides) is caught here.
    import tomllib

    table = tomllib.loads(recipe.read_text())
    manifest = json.loads((recipe.parent / "train.json").read_text())
    assert manifest["kind"] == table["kind"]
    for key, value in table.get("train", {}).items():
        assert manifest["train_config"][key] == value, ("train", key)
    for key, value in table.get("task", {}).items():
        assert manifest["task_options"][key] == value, ("task", key)
