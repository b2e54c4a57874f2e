"""Fault suite, numeric edge values (issue 15, findings 3 and 6): every numeric flag and config key has a range that
its error message states, floats must be finite, config files have a nesting limit, and unwritable output folders
are refused up front -- all exit 2 with one line, never a segfault or an "internal error" (exit 1)."""

from __future__ import annotations

import dataclasses
import sys
import typing
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error

from toolkit.bench.config import BenchConfig
from toolkit.capabilities import MODEL_KINDS
from toolkit.config import apply_overrides, check_ranges, number_type, range_error
from toolkit.convert.config import ConvertConfig
from toolkit.convert.tflite_import import ImportConfig
from toolkit.data.spec import parse_spec
from toolkit.data.synthetic.scene import SceneConfig
from toolkit.errors import UsageError
from toolkit.eval.config import EvalConfig
from toolkit.models import builder
from toolkit.pipeline.config import PipelineConfig
from toolkit.pipeline.sources_capture import SourceConfig
from toolkit.train import (
    task_autoencoder,
    task_behaviour,
    task_classifier,
    task_detector,
    task_segmenter,
    task_vae,
)
from toolkit.train.config import TrainConfig

MODEL = REPO / "models" / "behaviour" / "behaviour_int8.tflite"  # shipped; never loaded by these tests
CONFIGS = [
    TrainConfig,
    PipelineConfig,
    BenchConfig,
    ConvertConfig,
    EvalConfig,
    SourceConfig,
    ImportConfig,
    SceneConfig,
    *(builder(kind).Config for kind in MODEL_KINDS),
    # the [task] options of each training task
    task_autoencoder.Options,
    task_behaviour.BehaviourOptions,
    task_classifier.Options,
    task_detector.DetectorTaskOptions,
    task_segmenter.SegmenterTaskOptions,
    task_vae.Options,
]
# PipelineConfig.record_fps has its own rule in PipelineConfig.__post_init__ (finding 4), with or without a LIMITS
# entry; through the shared validator's default it must be finite either way.
MAY_BE_UNRANGED = {(PipelineConfig, "record_fps")}


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_numeric_key_has_a_declared_range(cls) -> None:
    hints = typing.get_type_hints(cls)
    numeric = {f.name for f in dataclasses.fields(cls) if number_type(hints[f.name])}
    assert numeric, cls
    missing = {key for key in numeric - set(cls.LIMITS) if (cls, key) not in MAY_BE_UNRANGED}
    assert not missing, f"{cls.__name__}: keys without a range: {sorted(missing)}"
    assert set(cls.LIMITS) <= numeric
    for key, (low, high) in cls.LIMITS.items():
        assert low <= high
        default = getattr(cls(), key)
        assert range_error(key, default, hints[key], (low, high)) is None, (cls, key, default)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: TrainConfig(epochs=2**63 - 1),
            "epochs must be an integer in 1..100000, got 9223372036854775807",
        ),
        (
            lambda: TrainConfig(learning_rate=float("nan")),
            "learning_rate must be a number in 1e-08..10, got nan",
        ),
        (lambda: TrainConfig(patience=-1), "patience must be an integer in 0..100000, got -1"),
        (lambda: TrainConfig(steps_per_epoch=0), "steps_per_epoch must be an integer in 1..10000000, got 0"),
        (lambda: PipelineConfig(stats_window=10**13), "stats_window must be an integer in 16..1000000"),
        (lambda: PipelineConfig(threads=32768), "threads must be an integer in 1..1024, got 32768"),
        (lambda: BenchConfig(threads=(1, 32768)), "threads must be integers in 1..1024, got 32768"),
        (lambda: BenchConfig(seconds=float("inf")), "seconds must be a number in 0.01..86400, got inf"),
        (lambda: ConvertConfig(threads=40000), "threads must be an integer in 0..1024, got 40000"),
        (lambda: EvalConfig(seed=-1), "seed must be an integer in 0..4294967295, got -1"),
        (
            lambda: SourceConfig(backoff_jitter=float("inf")),
            "backoff_jitter must be a number in 0..1, got inf",
        ),
        (lambda: builder("detector").Config(width=1e300), "width must be a number in 0.01..10, got 1e+300"),
        (
            lambda: builder("classifier").Config(input_shape=(28, 10**9, 1)),
            "input_shape must be integers in 1..4096",
        ),
        (lambda: ImportConfig(check_samples=2**31 - 1), "check_samples must be an integer in 0..10000"),
        (lambda: task_detector.DetectorTaskOptions(mosaic=2.0), "mosaic must be a number in 0..1, got 2"),
        (
            lambda: task_segmenter.SegmenterTaskOptions(class_weights=(1.0, -1.0)),
            "class_weights must be numbers",
        ),
        (lambda: task_classifier.Options(label_smoothing=1.0), "label_smoothing must be a number in 0..0.99"),
        # SPEC numbers: scenes=1e11 built a list of 1e11 scene configs (a hang) before the first frame
        (
            lambda: parse_spec("synthetic:scenes=100000000000").get_int("scenes"),
            "scenes must be an integer in 1..10000",
        ),
        (
            lambda: parse_spec("synthetic:jitter=inf").get_float("jitter"),
            "jitter must be a number in -2147483647..2147483647, got inf",
        ),
        (
            lambda: parse_spec("mnist:limit=-4").get_int("limit"),
            "limit must be an integer in 1..2147483647, got -4",
        ),
    ],
)
def test_config_classes_refuse_values_out_of_range(make, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("+", r"\+").replace(".", r"\.")):
        make()


def test_overrides_name_where_and_coerce_huge_numbers() -> None:
    with pytest.raises(UsageError, match=r"^x\.toml \[train\]: epochs must be an integer in 1\.\.100000"):
        apply_overrides(TrainConfig(), {"epochs": 2**63 - 1}, where="x.toml [train]")
    with pytest.raises(UsageError, match="expected a finite number, got an integer of about 401 digits"):
        apply_overrides(builder("classifier").Config(), {"width": 10**400}, where="model")
    # keys of a class without a LIMITS table (a task's options) still must be finite / within INT_RANGE
    options = dataclasses.make_dataclass(
        "Options", [("smoothing", float, 0.1), ("count", int, 3)], frozen=True
    )
    with pytest.raises(UsageError, match="smoothing must be a finite number, got nan"):
        apply_overrides(options(), {"smoothing": float("nan")})
    with pytest.raises(UsageError, match=r"count must be an integer in -2147483647\.\.2147483647"):
        apply_overrides(options(), {"count": 2**63})
    check_ranges(options(), "options")  # nothing out of range


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # finding 3: --threads 32768 segfaulted eval, demo and bench --in-process
        (
            ["eval", MODEL, "--data", "eth_ucy:split=test", "--threads", "32768"],
            "threads must be an integer in 1..1024",
        ),
        (
            ["bench", MODEL, "--in-process", "--no-store", "--threads", "32768"],
            "threads must be integers in 1..1024",
        ),
        (["bench", MODEL, "--in-process", "--no-store", "--threads", "1,40000"], "got 40000"),
        (
            ["bench", "matrix", "m.keras", "--data", "mnist", "--threads", "32768"],
            "threads must be an integer in 1..1024",
        ),
        (
            ["bench", "matrix", "m.keras", "--data", "mnist", "--runs", "0"],
            "runs must be an integer in 1..10000000",
        ),
        (
            ["bench", "matrix", "m.keras", "--data", "mnist", "--seed", "-5"],
            "seed must be an integer in 0..4294967295",
        ),
        (["demo", "--headless", "--threads", "32768"], "threads must be an integer in 1..1024, got 32768"),
        # synthetic source options: seed=-1 was "internal error: ValueError", warmup_s=1e12 simulated for ever
        (
            ["demo", "--headless", "--source", "synthetic:seed=-1"],
            "seed must be an integer in 0..4294967295, got -1",
        ),
        (
            ["demo", "--headless", "--source", "synthetic:warmup_s=1e12"],
            "warmup_s must be a number in 0..3600",
        ),
        (
            ["convert", "{tmp}/m.keras", "-o", "{tmp}/m.tflite", "--eval", "mnist", "--max-drop", "inf"],
            "--max-drop must be a finite number >= 0, got inf",
        ),
        # toolkit import: --seed -3 was "internal error: ValueError", --check-samples 2**31-1 a MemoryError
        (
            ["import", MODEL, "-o", "{tmp}/x.keras", "--seed", "-3"],
            "seed must be an integer in 0..4294967295",
        ),
        (
            ["import", MODEL, "-o", "{tmp}/x.keras", "--check-samples", "2147483647"],
            "check_samples must be an integer",
        ),
        (
            ["import", MODEL, "-o", "{tmp}/x.keras", "--input-size", "100000x3"],
            "input_size must be integers in 1..8192, got 100000",
        ),
        (
            ["eval", MODEL, "--data", "synthetic:split=val,scenes=100000000000"],
            "scenes must be an integer in 1..10000",
        ),
        (
            ["train", "classifier", "-o", "{tmp}/c.keras", "--set", "task.max_rotation=1000"],
            "max_rotation must be a number in 0..180",
        ),
        # finding 6: flags
        (
            ["bench", MODEL, "--no-store", "--threads", "1,,2"],
            "expected comma-separated integers such as 1,2,4",
        ),
        (
            ["bench", MODEL, "--no-store", "--seconds", "inf"],
            "seconds must be a number in 0.01..86400, got inf",
        ),
        (
            ["bench", MODEL, "--no-store", "--seconds", "nan"],
            "seconds must be a number in 0.01..86400, got nan",
        ),
        (["bench", MODEL, "--no-store", "--runs", "99999999999"], "runs must be an integer in 1..10000000"),
        (
            ["bench", MODEL, "--remote", "pi@h", "--connect-timeout", "10000000"],
            "connect_timeout must be an integer in 1",
        ),
        (
            ["eval", MODEL, "--data", "eth_ucy:split=test", "--seed", "-1"],
            "seed must be an integer in 0..4294967295",
        ),
        (
            ["eval", MODEL, "--data", "eth_ucy:split=test", "--limit", "0"],
            "limit must be an integer in 1..1000000000",
        ),
        (
            ["train", "classifier", "-o", "{tmp}/c.keras", "--patience", "-1"],
            "patience must be an integer in 0..100000",
        ),
        (
            ["train", "classifier", "-o", "{tmp}/c.keras", "--lr", "nan"],
            "learning_rate must be a number in 1e-08..10",
        ),
        (
            ["train", "classifier", "-o", "{tmp}/c.keras", "--epochs", str(2**63 - 1)],
            "epochs must be an integer in 1..100000, got 9223372036854775807",
        ),
        (
            ["train", "classifier", "-o", "{tmp}/c.keras", "--set", "model.width=1e400"],
            "width must be a number in 0.01..10, got inf",
        ),
        (
            ["train", "classifier", "-o", "{tmp}/c.keras", "--set", "train.steps_per_epoch=0"],
            "steps_per_epoch must be an integer in 1",
        ),
        (
            ["train", "classifier", "-o", "{tmp}/c.keras", "--set", "train.learning_rate=nan"],
            "learning_rate must be a number",
        ),
        (
            ["train", "classifier", "-o", "{tmp}/c.keras", "--set", "task.label_smoothing=inf"],
            "label_smoothing must be a number in 0..0.99, got inf",
        ),
        (
            ["train", "classifier", "-o", "{tmp}/c.keras", "--set", "model.num_classes=" + "9" * 5000],
            "model.num_classes",
        ),
        (
            [
                "train",
                "classifier",
                "-o",
                "{tmp}/c.keras",
                "--set",
                "model.filters=" + "[" * 5000 + "]" * 5000,
            ],
            "nested",
        ),
    ],
)
def test_bad_flags_are_one_line_exit_2(cli, tmp_path: Path, args: list, message: str) -> None:
    result = cli(*(str(a).format(tmp=tmp_path) for a in args), timeout=120)
    assert_one_line_error(result, 2, message)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "big.toml",
            "[train]\nepochs = 9223372036854775807\n",
            "epochs must be an integer in 1..100000, got 9223372036854775807",
        ),
        ("width.toml", "[model]\nwidth = 1e300\n", "width must be a number in 0.01..10, got 1e+300"),
        (
            "nan.toml",
            "[train]\nlearning_rate = nan\n",
            "learning_rate must be a number in 1e-08..10, got nan",
        ),
        ("patience.json", '{"train": {"patience": -1}}', "patience must be an integer in 0..100000, got -1"),
        (
            "steps.toml",
            "[train]\nsteps_per_epoch = 0\n",
            "steps_per_epoch must be an integer in 1..10000000, got 0",
        ),
        ("deep.json", '{"train": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested deeper than 32 levels"),
        (
            "deep.toml",
            "[train]\nepochs = " + "[" * 100_000 + "]" * 100_000 + "\n",
            "nested deeper than 32 levels",
        ),
        ("digits.json", '{"train": {"epochs": ' + "9" * 5000 + "}}", "is not valid JSON"),
    ],
)
def test_bad_train_config_files_are_one_line_exit_2(
    cli, tmp_path: Path, name: str, text: str, message: str
) -> None:
    config = tmp_path / name
    config.write_text(text)
    result = cli("train", "classifier", "-o", tmp_path / "c.keras", "--config", config, timeout=120)
    assert_one_line_error(result, 2, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("window.toml", "stats_window = 10000000000000\n", "stats_window must be an integer in 16..1000000"),
        ("threads.toml", "threads = 32768\n", "threads must be an integer in 1..1024, got 32768"),
        ("deep.json", '{"source": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested deeper than 32 levels"),
    ],
)
def test_bad_demo_config_files_are_one_line_exit_2(
    cli, tmp_path: Path, name: str, text: str, message: str
) -> None:
    config = tmp_path / name
    config.write_text(text)
    assert_one_line_error(cli("demo", "--headless", "--config", config, timeout=120), 2, message)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
@pytest.mark.parametrize(
    "command",
    [
        ["eval", MODEL, "--data", "eth_ucy:split=test"],
        ["bench", "matrix", "m.keras", "--data", "mnist", "--no-store"],
    ],
)
def test_unwritable_out_dir_is_exit_2_before_any_work(cli, tmp_path: Path, command: list) -> None:
    assert_one_line_error(
        cli(*command, "--out-dir", "/proc/x"), 2, "--out-dir /proc/x: cannot write in /proc"
    )
    (tmp_path / "file").write_text("x")
    assert_one_line_error(cli(*command, "--out-dir", tmp_path / "file" / "sub"), 2, "is a file, not a folder")


def test_no_flag_of_these_commands_takes_an_unbounded_number() -> None:
    """eval, train and bench flags are parsed by range-checked types, never a bare int/float (bench matrix: the
    CLI cases above)."""
    import argparse

    from toolkit.cli import build_parser

    subparsers = next(a for a in build_parser()._actions if a.dest == "command").choices
    for name in ("eval", "train", "bench"):
        for action in subparsers[name]._actions:
            assert action.type not in (int, float), (name, action.option_strings)
            if isinstance(action, argparse._StoreAction) and action.type is not None:
                with pytest.raises(argparse.ArgumentTypeError):
                    action.type("1" + "0" * 40)  # 10**40: beyond every range
