"""`convert --qat EPOCHS --train-data DATA`: a toolkit classifier is rebuilt in tf_keras from its training
manifest, fine-tuned with tfmot in its own process and converted to full int8; parity and the accuracy gate as
for any conversion."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import assert_one_line_error, require_tf, run_cli

pytestmark = [pytest.mark.tf, pytest.mark.shared, pytest.mark.slow]
OVERRIDES: dict[str, object] = {}  # the zoo classifier's architecture (38k parameters)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, shared: Path) -> Path:
    require_tf()
    import keras

    from toolkit.data.labelled_images import load_labelled_images
    from toolkit.models import build_model, config_for

    keras.utils.set_random_seed(0)
    data = load_labelled_images("mnist:split=train", (28, 28, 1))
    model = build_model("classifier", OVERRIDES)
    model.compile(keras.optimizers.Adam(3e-3), {"probs": "sparse_categorical_crossentropy"})
    # ~650 steps: enough for BatchNormalization's moving statistics (momentum 0.99) to settle.
    model.fit(data.images, {"probs": data.labels}, epochs=3, batch_size=32, verbose=0)
    folder = tmp_path_factory.mktemp("qat")
    path = folder / "clf.keras"
    model.save(path)
    config = dataclasses.asdict(config_for("classifier", OVERRIDES))
    path.with_suffix(".train.json").write_text(
        json.dumps({"kind": "classifier", "model": {"config": config}})
    )
    return path


def test_qat_converts_to_full_int8_and_passes_the_gate(classifier: Path, tmp_path: Path) -> None:
    out = tmp_path / "clf_qat.tflite"
    proc = run_cli(
        "convert",
        str(classifier),
        "-o",
        str(out),
        "--calib",
        "mnist:split=train,limit=200",
        "--qat",
        "1",
        "--train-data",
        "mnist:split=train,limit=2000",
        "--eval",
        "mnist:split=test",
        "--eval-limit",
        "500",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    manifest = json.loads(out.with_suffix(".json").read_text())
    qat = manifest["qat"]
    assert (
        qat["kind"] == "classifier"
        and qat["epochs"] == 1
        and qat["samples"] == 2000
        and len(qat["loss"]) == 1
    )
    assert manifest["precision"] == "int8" and [t["dtype"] for t in manifest["inputs"]] == ["int8"]
    assert manifest["accuracy_gate"]["passed"] and manifest["accuracy_gate"]["float"] > 0.7
    assert "quantization-aware training: 1 epoch(s) on 2000 samples" in proc.stdout


def test_qat_needs_the_training_manifest_and_train_data(classifier: Path, tmp_path: Path) -> None:
    no_data = run_cli(
        "convert",
        str(classifier),
        "-o",
        str(tmp_path / "a.tflite"),
        "--calib",
        "mnist:split=train,limit=200",
        "--qat",
        "1",
    )
    assert_one_line_error(no_data, 2, "--qat needs --train-data SPEC")
    lonely = tmp_path / "lonely.keras"
    lonely.write_bytes(classifier.read_bytes())
    missing = run_cli(
        "convert",
        str(lonely),
        "-o",
        str(tmp_path / "b.tflite"),
        "--calib",
        "mnist:split=train,limit=200",
        "--qat",
        "1",
        "--train-data",
        "mnist:split=train",
    )
    assert_one_line_error(
        missing, 2, "from its training manifest (lonely.train.json, written by toolkit train)"
    )
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tflite"]


def test_qat_of_a_segmenter_trains_on_masks_and_converts(tmp_path: Path) -> None:
    require_tf()
    from toolkit.models import build_model, config_for

    overrides = {"input_shape": [64, 80, 3]}
    path = tmp_path / "seg.keras"
    build_model("segmenter", overrides).save(path)
    config = dataclasses.asdict(config_for("segmenter", overrides))
    path.with_suffix(".train.json").write_text(json.dumps({"kind": "segmenter", "model": {"config": config}}))
    frames = "synthetic:split=train,scenes=1,frames=60,every=3"
    out = tmp_path / "seg_qat.tflite"
    proc = run_cli(
        "convert", str(path), "-o", str(out), "--calib", frames, "--qat", "1", "--train-data", frames
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["qat"]["kind"] == "segmenter" and manifest["qat"]["samples"] == 20
    assert manifest["precision"] == "int8" and manifest["outputs"][0]["signature_name"] == "mask"
    refused = run_cli(
        "convert",
        str(path),
        "-o",
        str(tmp_path / "b.tflite"),
        "--calib",
        frames,
        "--qat",
        "1",
        "--train-data",
        frames,
        "--keep-float",
        "mask",
    )
    assert_one_line_error(refused, 2, "--qat trains for full int8 with the default backend (no --keep-float)")


def _untrained(kind: str, overrides: dict, folder: Path, task_options: dict | None = None) -> Path:
    """A freshly built toolkit model with the training manifest QAT reads (kind, builder config, task options)."""
    from toolkit.models import build_model, config_for

    path = folder / f"{kind}.keras"
    build_model(kind, overrides).save(path)
    config = dataclasses.asdict(config_for(kind, overrides))
    path.with_suffix(".train.json").write_text(
        json.dumps({"kind": kind, "model": {"config": config}, "task_options": task_options or {}})
    )
    return path


def test_qat_of_a_detector_trains_on_its_task_targets_and_converts(tmp_path: Path) -> None:
    require_tf()
    path = _untrained("detector", {"input_shape": [64, 96, 3], "width": 0.25}, tmp_path, {"box_weight": 4.0})
    frames = "synthetic:split=train,scenes=1,frames=40,every=4"
    out = tmp_path / "det_qat.tflite"
    proc = run_cli(
        "convert", str(path), "-o", str(out), "--calib", frames, "--qat", "1", "--train-data", frames
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(out.with_suffix(".json").read_text())
    qat = manifest["qat"]
    assert qat["kind"] == "detector" and qat["samples"] == 10 and qat["batch_size"] == 8
    # every activation range started at the calibration data's, not at tfmot's [-6, 6]
    assert qat["ranges"] > 10 and qat["ranges_from_calibration"] == qat["ranges"]
    assert {o["signature_name"] for o in manifest["outputs"]} == {"heatmap", "box"}
    assert manifest["precision"] == "int8" and manifest["inputs"][0]["dtype"] == "int8"


def test_qat_of_the_behaviour_transformer_annotates_dense_layers_and_converts(
    tmp_path: Path, shared: Path
) -> None:  # calibrates on eth_ucy
    require_tf()
    path = _untrained(
        "behaviour",
        {"d_model": 16, "ffn_dim": 32, "head_dim": 32, "num_blocks": 1},
        tmp_path,
        {"extra_data": "", "extra_val_data": ""},
    )
    data = "eth_ucy:scene=eth,split=train"
    out = tmp_path / "beh_qat.tflite"
    proc = run_cli("convert", str(path), "-o", str(out), "--calib", data, "--qat", "1", "--train-data", data)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(out.with_suffix(".json").read_text())
    qat = manifest["qat"]
    assert qat["kind"] == "behaviour" and qat["samples"] > 100 and len(qat["loss"]) == 1
    assert qat["ranges_from_calibration"] == qat["ranges"] > 3
    assert {o["signature_name"] for o in manifest["outputs"]} == {"future", "crossing"}
    assert manifest["precision"] == "int8"
