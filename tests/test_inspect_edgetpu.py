"""The offline Edge TPU check, validated against Coral's real compilations in ../shared, and `inspect` on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, run_cli

from toolkit.inspect.edgetpu import compatibility, compiled_summary, cpu_original
from toolkit.runtime.tflite_file import read_model_bytes

pytestmark = pytest.mark.shared


def _compiled(shared: Path) -> list[Path]:
    files = sorted((shared / "models" / "coral-test-data").glob("*_edgetpu.tflite"))
    assert len(files) == 4, files
    return files


def test_prediction_matches_what_edgetpu_compiler_left_on_the_cpu(shared: Path) -> None:
    # Each _edgetpu.tflite was made by Coral's compiler from the CPU original beside it: the ops it left outside
    # the edgetpu-custom-op are exactly the ones the offline check predicts, in order.
    for compiled in _compiled(shared):
        original = cpu_original(compiled)
        assert original is not None
        data, model = read_model_bytes(original)
        predicted = compatibility(model, data)
        actual = compiled_summary(read_model_bytes(compiled)[1])
        assert actual is not None and actual.custom_ops == 1
        assert predicted.cpu_ops() == actual.cpu_ops, compiled.name
        assert actual.original_ops == len(model.ops)
        assert predicted.mapped_ops == actual.original_ops - len(actual.cpu_ops)
        assert predicted.fits_on_chip and not predicted.model_problems


def test_inspect_recognises_every_compiled_model(shared: Path) -> None:
    for compiled in _compiled(shared):
        text = run_cli("inspect", str(compiled))
        assert text.returncode == 0, text.stderr
        assert (
            "Edge TPU: compiled by edgetpu_compiler -- needs an Edge TPU and libedgetpu.so.1" in text.stdout
        )
        assert "on the Edge TPU: 1 edgetpu-custom-op, holding" in text.stdout
        info = json.loads(run_cli("inspect", str(compiled), "--json").stdout)["edgetpu"]
        assert info["compiled"] and info["custom_ops"] == 1
    mobilenet = json.loads(run_cli("inspect", str(_compiled(shared)[-1]), "--json").stdout)["edgetpu"]
    assert mobilenet["cpu_ops"] == [] and mobilenet["edgetpu_holds_ops"] == 66
    deeplab = run_cli(
        "inspect", str(shared / "models/coral-test-data/deeplabv3_mnv2_pascal_quant_edgetpu.tflite")
    )
    assert (
        "on the CPU: RESIZE_BILINEAR, QUANTIZE, CONCATENATION, CONV_2D x2, RESIZE_BILINEAR x2, ARG_MAX"
        in deeplab.stdout
    )


def test_zoo_report_cnns_map_the_transformer_does_not() -> None:
    def report(rel: str):
        data, model = read_model_bytes(REPO / "models" / rel)
        return compatibility(model, data)

    for cnn in (
        "person_detector/person_detector_int8.tflite",
        "mnist_classifier/mnist_classifier_int8.tflite",
        "mnist_autoencoder/mnist_autoencoder_int8.tflite",
        "mnist_vae/mnist_vae_encoder_int8.tflite",
        "mnist_vae/mnist_vae_decoder_int8.tflite",
    ):
        assert report(cnn).fully_mapped, cnn
    seg = report("scene_segmenter/scene_segmenter_int8.tflite")
    assert seg.cut is not None and seg.cut.op == "SOFTMAX" and seg.cpu_ops() == ["SOFTMAX"]
    assert seg.fix is not None and seg.fix.startswith("only the last 1 op(s) run on the CPU")
    beh = report("behaviour/behaviour_int8.tflite")
    assert beh.cut is not None and beh.cut.op == "FULLY_CONNECTED"
    assert "is not one-dimensional" in beh.cut.reason and "1x1 Conv2D" in (beh.fix or "")


def test_float_model_is_reported_as_not_compilable(shared: Path) -> None:
    model = shared / "models" / "mediapipe-0.10.14" / "selfie_segmentation.tflite"
    info = json.loads(run_cli("inspect", str(model), "--json").stdout)["edgetpu"]
    assert not info["compiled"] and not info["fully_mapped"]
    assert "the model is not quantized: convert with --quantize int8 (full integer)" in info["model_problems"]
