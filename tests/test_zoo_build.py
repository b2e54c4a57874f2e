"""``toolkit zoo build`` / ``toolkit zoo card`` (toolkit.zoobuild): the shipped cards re-render byte for byte, the
build runs the right commands per recipe, and a tiny recipe builds end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, assert_one_line_error, require_tf, run_cli

from toolkit.errors import UsageError
from toolkit.zoobuild import BuildConfig, build_zoo, find_recipes
from toolkit.zoobuild.build import run_toolkit

ZOO = REPO / "models"
NAMES = [path.parent.name for path in sorted(ZOO.glob("*/recipe.toml"))]
GENERATED = (
    "README.md",
    "eval.json",
    "train.json",
)  # what a build writes beside the recipe (besides .tflite/.json)


def _copy_zoo(target: Path, names: list[str] = NAMES, keep_generated: bool = True) -> Path:
    target.mkdir(parents=True)
    for name in names:
        shutil.copytree(
            ZOO / name, target / name, ignore=None if keep_generated else shutil.ignore_patterns(*GENERATED)
        )
    for extra in ("int8_workflow.json", "README.md"):
        shutil.copy2(ZOO / extra, target / extra)
    return target


def test_card_regenerates_every_shipped_card_identically(tmp_path: Path) -> None:
    models = _copy_zoo(tmp_path / "models")
    for name in NAMES:
        (models / name / "README.md").write_text("stale\n")
    (models / "README.md").write_text("stale\n")
    result = run_cli("zoo", "card", "--models", models)
    assert result.returncode == 0, result.stderr
    for name in NAMES:
        assert (models / name / "README.md").read_text() == (ZOO / name / "README.md").read_text(), name
        assert f"toolkit zoo build --only {name}" in (models / name / "README.md").read_text()
    assert (models / "README.md").read_text() == (ZOO / "README.md").read_text()
    assert result.stdout.count("wrote ") == len(NAMES) + 1


def test_card_of_one_model_leaves_the_others(tmp_path: Path) -> None:
    models = _copy_zoo(tmp_path / "models")
    (models / "behaviour" / "README.md").write_text("stale\n")
    (models / "mnist_vae" / "README.md").write_text("stale\n")
    assert run_cli("zoo", "card", "mnist_vae", "--models", models).returncode == 0
    assert (models / "mnist_vae" / "README.md").read_text() == (ZOO / "mnist_vae" / "README.md").read_text()
    assert (models / "behaviour" / "README.md").read_text() == "stale\n"


class FakeToolkit:
    """Stands in for ``python -m toolkit ... --json``: records each command and answers with the shipped files of
    the model (its training manifest, int8 files, eval reports and latency), so a build reproduces them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = ZOO / name
        self.evals = json.loads((self.source / "eval.json").read_text())
        self.commands: list[list[str]] = []

    def __call__(self, *args: Any, log: Path) -> dict[str, Any]:
        cmd = [str(a) for a in args]
        self.commands.append(cmd)
        if cmd[0] == "train":
            keras = Path(cmd[cmd.index("-o") + 1])
            keras.write_bytes(b"")
            shutil.copy2(self.source / "train.json", keras.with_suffix(".train.json"))
            return {}
        if cmd[0] == "convert":
            target = Path(cmd[cmd.index("-o") + 1])
            for suffix in (".tflite", ".json"):
                shutil.copy2((self.source / target.name).with_suffix(suffix), target.with_suffix(suffix))
            return {}
        if cmd[0] == "eval":
            entry = next(e for e in self.evals["evals"] if e["data"] == cmd[cmd.index("--data") + 1])
            return entry["float" if cmd[1].endswith(".keras") else "int8"]
        if cmd[0] == "bench":
            stem = Path(cmd[1]).name.removesuffix("_int8.tflite").removeprefix(self.name)
            return self.evals["latency"][stem.lstrip("_") or "model"]
        raise AssertionError(cmd)


@pytest.mark.parametrize("name", NAMES)
def test_build_runs_the_recipe_and_reproduces_the_shipped_files(tmp_path: Path, name: str) -> None:
    models = _copy_zoo(tmp_path / "models", [name], keep_generated=False)
    fake = FakeToolkit(name)
    written = build_zoo(BuildConfig(models_dir=str(models), runs_dir=str(tmp_path / "runs")), toolkit=fake)
    assert written == [models / name / "README.md", models / "README.md"]
    for file in GENERATED:
        assert (models / name / file).read_text() == (ZOO / name / file).read_text(), file
    kinds = [cmd[0] for cmd in fake.commands]
    recipe = find_recipes(models)[0][1]
    assert fake.commands[0] == [
        "train",
        json.loads((ZOO / name / "train.json").read_text())["kind"],
        "--config",
        str(recipe),
        "-o",
        str(tmp_path / "runs" / name / f"{name}.keras"),
    ]
    parts = len(list((ZOO / name).glob("*_int8.tflite")))
    assert (
        kinds == ["train"] + ["convert"] * parts + ["eval"] * 2 * len(fake.evals["evals"]) + ["bench"] * parts
    )
    for cmd in fake.commands:
        if cmd[0] == "convert":
            assert cmd[4:6] == ["--quantize", "int8"] and "--calib" in cmd
        if cmd[0] == "bench":
            assert cmd[2:8] == ["--threads", "1,2", "--runs", "300", "--warmup", "30"]


def test_skip_train_reuses_the_float_model(tmp_path: Path) -> None:
    models = _copy_zoo(tmp_path / "models", ["mnist_classifier"], keep_generated=False)
    runs = tmp_path / "runs"
    (runs / "mnist_classifier").mkdir(parents=True)
    (runs / "mnist_classifier" / "mnist_classifier.keras").write_bytes(b"")
    shutil.copy2(
        ZOO / "mnist_classifier" / "train.json", runs / "mnist_classifier" / "mnist_classifier.train.json"
    )
    fake = FakeToolkit("mnist_classifier")
    build_zoo(BuildConfig(models_dir=str(models), runs_dir=str(runs), skip_train=True), toolkit=fake)
    assert [cmd[0] for cmd in fake.commands][:2] == ["convert", "eval"]


def test_every_recipe_is_checked_before_anything_runs(tmp_path: Path) -> None:
    models = _copy_zoo(tmp_path / "models", ["mnist_classifier"], keep_generated=False)
    (models / "zz_broken").mkdir()
    (models / "zz_broken" / "recipe.toml").write_text('kind = "classifier"\n[[eval]]\nlabel = "no data"\n')
    fake = FakeToolkit("mnist_classifier")
    with pytest.raises(UsageError, match=r"\[\[eval\]\] entry needs data"):
        build_zoo(BuildConfig(models_dir=str(models), runs_dir=str(tmp_path / "runs")), toolkit=fake)
    assert fake.commands == []


def test_a_failing_command_raises_its_exit_codes_error(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    with pytest.raises(
        UsageError, match=r"'toolkit eval --data mnist:split=test' failed \(exit 2\): .*give the model"
    ):
        run_toolkit("eval", "--data", "mnist:split=test", log=log, cwd=REPO)
    assert "give the model" in log.read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["zoo"], "required: SUBCOMMAND"),
        (["zoo", "card", "mnist_clasifier"], "did you mean 'mnist_classifier'"),
        (["zoo", "build", "--only", "nope"], "no recipe for 'nope'"),
        (["zoo", "build", "--models", "/nonexistent/models"], "model zoo folder not found"),
        (["zoo", "card", "--models", "toolkit"], "no <name>/recipe.toml"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    assert_one_line_error(run_cli(*args), 2, message)


@pytest.mark.parametrize("sub", ["build", "card"])
def test_subcommand_help(sub: str) -> None:
    result = run_cli("zoo", sub, "--help")
    assert result.returncode == 0 and f"usage: toolkit zoo {sub}" in result.stdout


TINY = """kind = "classifier"
name = "tiny"
description = "a test recipe: one short epoch"

[train]
data = "mnist:split=train,limit=64"
val_data = "mnist:split=val,limit=32"
epochs = 1
batch_size = 16
steps_per_epoch = 2
seed = 0

[model]
width = 0.25

[convert]
calib = "mnist:split=train,limit=40"
calib_samples = 24

[[eval]]
data = "mnist:split=test,limit=40"
label = "40 test digits"
"""


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.shared
def test_a_tiny_recipe_builds_end_to_end(tmp_path: Path, shared: Path) -> None:
    require_tf()
    models = tmp_path / "models"
    (models / "tiny").mkdir(parents=True)
    (models / "tiny" / "recipe.toml").write_text(TINY)
    lines: list[str] = []
    build_zoo(
        BuildConfig(
            models_dir=str(models),
            runs_dir=str(tmp_path / "runs"),
            bench_threads=(1,),
            bench_runs=3,
            bench_warmup=0,
        ),
        say=lines.append,
    )
    folder = models / "tiny"
    assert {p.name for p in folder.iterdir()} >= {
        "tiny_int8.tflite",
        "tiny_int8.json",
        "eval.json",
        "train.json",
        "README.md",
    }
    evals = json.loads((folder / "eval.json").read_text())
    assert (
        evals["evals"][0]["float"]["samples"] == 40 and evals["evals"][0]["int8"]["model_format"] == "tflite"
    )
    assert evals["latency"]["model"]["results"][0]["threads"] == 1
    card = (folder / "README.md").read_text()
    assert "tiny_int8.tflite" in card and "toolkit zoo build --only tiny" in card
    assert "[tiny](tiny/README.md)" in (models / "README.md").read_text()
    assert lines[0] == "== tiny" and any(line.startswith("$ toolkit train classifier") for line in lines)
    # the card is a function of the files beside it
    (folder / "README.md").write_text("stale\n")
    assert run_cli("zoo", "card", "--models", models).returncode == 0
    assert (folder / "README.md").read_text() == card
