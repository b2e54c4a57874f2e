"""Fault suite, the Lambda-layer hint (issue 15, finding 10): a .keras file with a Lambda layer is refused in safe
mode by ``eval`` and ``bench matrix`` with the hint "pass --trust-model", and both commands accept that flag (as
``convert`` does), so the hint can be followed."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import assert_one_line_error, require_tf

pytestmark = [pytest.mark.tf, pytest.mark.shared, pytest.mark.slow]


@pytest.fixture(scope="module")
def lambda_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MNIST-shaped classifier ("image" -> "probs") with a Lambda layer: code that runs when loaded."""
    require_tf()
    import keras

    image = keras.Input((28, 28, 1), name="image")
    scaled = keras.layers.Lambda(lambda t: t * 1.0, name="scale")(image)
    probs = keras.layers.Dense(10, activation="softmax", name="probs")(keras.layers.Flatten()(scaled))
    path = tmp_path_factory.mktemp("lambda") / "lambda_classifier.keras"
    keras.Model(image, {"probs": probs}).save(path)
    return path


def test_eval_hint_names_a_flag_eval_accepts(cli, shared: Path, lambda_classifier: Path) -> None:
    refused = cli("eval", lambda_classifier, "--data", "mnist:split=test", "--limit", "20")
    assert_one_line_error(refused, 2, "pass --trust-model")
    trusted = cli(
        "eval", lambda_classifier, "--data", "mnist:split=test", "--limit", "20", "--trust-model", "--json"
    )
    assert trusted.returncode == 0, trusted.stderr
    assert '"kind": "classifier"' in trusted.stdout


def test_bench_matrix_hint_names_a_flag_bench_matrix_accepts(
    cli, shared: Path, lambda_classifier: Path, tmp_path: Path
) -> None:
    common = [
        "bench",
        "matrix",
        lambda_classifier,
        "--data",
        "mnist:split=test",
        "--modes",
        "fp32",
        "--limit",
        "20",
        "--runs",
        "3",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--no-store",
    ]
    refused = cli(*common, "--out-dir", tmp_path / "refused")
    assert_one_line_error(refused, 2, "pass --trust-model")
    trusted = cli(*common, "--out-dir", tmp_path / "trusted", "--trust-model")
    assert trusted.returncode == 0, trusted.stderr
    assert (tmp_path / "trusted" / "lambda_classifier_fp32.tflite").is_file()
