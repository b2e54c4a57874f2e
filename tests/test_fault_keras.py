"""Fault suite, malicious .keras files (issue 15): a Lambda layer whose code would write a file, configs naming
modules outside Keras (os.system, builtins.exec, subprocess as an activation), a zip bomb and a truncated archive
are each refused with one line and exit 2 by convert and eval, and the code never runs (its sentinel file is never
created). The archive checks (toolkit.convert.keras_archive) read only the zip directory and config.json."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from conftest import assert_one_line_error, require_tf

pytestmark = [pytest.mark.tf]


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny, harmless Sequential model: the base of every malicious variant."""
    require_tf()
    import keras

    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    path = tmp_path_factory.mktemp("keras") / "plain.keras"
    model.save(path)
    return path


def _variant(
    plain: Path, out: Path, layer: dict | None = None, activation: dict | None = None, weights_zeros: int = 0
) -> Path:
    with zipfile.ZipFile(plain) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "config.json":
                config = json.loads(data)
                if layer is not None:
                    config["config"]["layers"][1] = layer
                if activation is not None:
                    config["config"]["layers"][1]["config"]["activation"] = activation
                data = json.dumps(config).encode()
            if info.filename == "model.weights.h5" and weights_zeros:
                with zout.open(info.filename, "w", force_zip64=True) as handle:
                    for _ in range(weights_zeros):
                        handle.write(bytes(1 << 24))  # 16 MiB of zeros per step, deflated about 1000x
                continue
            zout.writestr(info.filename, data)
    return out


def _refused_everywhere(cli, model: Path, tmp_path: Path, message: str, sentinel: Path | None = None) -> None:
    out = tmp_path / "out"
    for args in (
        ["convert", model, "-o", out / "m.tflite", "--quantize", "fp32"],
        ["eval", model, "--data", "mnist:split=test,limit=4", "--task", "classify"],
    ):
        assert_one_line_error(cli(*args), 2, message)
    assert not out.exists() or not list(out.iterdir())
    if sentinel is not None:
        assert not sentinel.exists(), "the model's code ran"


def test_a_lambda_whose_code_writes_a_file_never_runs(cli, tmp_path: Path) -> None:
    require_tf()
    import keras

    sentinel = tmp_path / "SENTINEL"
    inp = keras.Input((8, 8, 1))
    code = (
        f"lambda t: t * float(open({str(sentinel)!r}, 'w').write('ran') or 1.0)"  # the path in the bytecode
    )
    out = keras.layers.Lambda(eval(code))(inp)
    path = tmp_path / "lambda.keras"
    keras.Model(inp, keras.layers.Dense(3)(keras.layers.Flatten()(out))).save(path)
    sentinel.unlink()  # building the model ran the lambda once, here; loading must not
    _refused_everywhere(cli, path, tmp_path, "Lambda layer", sentinel)


@pytest.mark.parametrize(
    ("name", "entry", "where"),
    [
        ("os_system", {"module": "os", "class_name": "system", "config": "touch {sentinel}"}, "layer"),
        (
            "builtins_exec",
            {"module": "builtins", "class_name": "exec", "config": "open('{sentinel}', 'w')"},
            "layer",
        ),
        (
            "subprocess",
            {"module": "subprocess", "class_name": "getoutput", "config": "touch {sentinel}"},
            "activation",
        ),
    ],
)
def test_a_config_naming_a_module_outside_keras_is_refused(
    cli, plain: Path, tmp_path: Path, name: str, entry: dict, where: str
) -> None:
    sentinel = tmp_path / "SENTINEL"
    entry = {**entry, "config": entry["config"].format(sentinel=sentinel), "registered_name": None}
    path = _variant(plain, tmp_path / f"{name}.keras", **{where: entry})
    _refused_everywhere(cli, path, tmp_path, f"from module '{entry['module']}', outside Keras", sentinel)


def test_a_zip_bomb_is_refused_before_anything_is_inflated(cli, plain: Path, tmp_path: Path) -> None:
    path = _variant(plain, tmp_path / "bomb.keras", weights_zeros=8)  # 128 MiB in about 130 KB
    assert path.stat().st_size < 1 << 20
    _refused_everywhere(cli, path, tmp_path, "refused as a zip bomb")


def test_truncated_and_damaged_archives_are_refused(cli, plain: Path, tmp_path: Path) -> None:
    data = plain.read_bytes()
    cut = tmp_path / "cut.keras"
    cut.write_bytes(data[: len(data) // 2])
    _refused_everywhere(cli, cut, tmp_path, "not a Keras v3 .keras archive")
    flipped = bytearray(data)
    with zipfile.ZipFile(plain) as archive:  # damage the config's compressed bytes: a CRC or inflate error
        info = archive.getinfo("config.json")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start, start + min(info.compress_size, 64)):
        flipped[i] ^= 0xFF
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes(bytes(flipped))
    _refused_everywhere(cli, damaged, tmp_path, "cannot load")


def test_the_plain_model_still_converts(cli, plain: Path, tmp_path: Path) -> None:
    result = cli("convert", plain, "-o", tmp_path / "m.tflite", "--quantize", "fp32")
    assert result.returncode == 0, result.stderr[-2000:]
