"""Third-party models in the demo through adapters: Coral's Cityscapes DeepLab (argmax ids) as the segmenter, an
SSD-style four-tensor detector, label mapping from config files, and one-line errors for bad configs."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, assert_one_line_error, require_tf, run_cli

from toolkit.adapters.third_party import load_adapter
from toolkit.errors import UsageError
from toolkit.pipeline.detect import Detector
from toolkit.pipeline.segment import CLASSES, Segmenter
from toolkit.runtime import Runner

ADAPTERS = REPO / "deploy" / "adapters"
CITYSCAPES = ADAPTERS / "coral_deeplab_cityscapes.toml"


def _coral(shared: Path, name: str) -> Path:
    return shared / "models" / "coral-test-data" / name


@pytest.mark.shared
def test_shipped_label_lists_match_the_model_label_files(shared: Path) -> None:
    for config, labels in (
        ("coral_deeplab_cityscapes.toml", "cityscapes_segmentation_labels.txt"),
        ("coral_deeplab_pascal.toml", "pascal_voc_segmentation_labels.txt"),
        ("ssd_coco.toml", "coco_labels.txt"),
    ):
        adapter = load_adapter(ADAPTERS / config, CLASSES if "deeplab" in config else ("person",))
        names = [n.strip() for n in _coral(shared, labels).read_text().splitlines() if n.strip()]
        assert list(adapter.labels) == names[: len(adapter.labels)], config


@pytest.mark.shared
def test_cityscapes_deeplab_as_our_segmenter(shared: Path) -> None:
    adapter = load_adapter(CITYSCAPES, CLASSES)
    image = cv2.imread(str(_coral(shared, "cityscapes_segmentation.bmp")))
    ids = cv2.imread(str(_coral(shared, "cityscapes_segmentation_mask.bmp")), cv2.IMREAD_GRAYSCALE)
    expected = adapter.lookup(CLASSES)[ids]  # Coral's expected output, mapped by the same config
    runner = Runner(_coral(shared, "deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite"), num_threads=2)
    with Segmenter(runner, adapter=adapter) as segmenter:
        labels = segmenter(image)
        wide = segmenter(cv2.resize(image, (640, 480)))  # letterboxed, mapped back to the frame
    assert labels.shape == ids.shape and (labels == expected).mean() > 0.9
    person = CLASSES.index("person")
    both = ((labels == person) & (expected == person)).sum()
    assert both / ((labels == person) | (expected == person)).sum() > 0.8
    assert wide.shape == (480, 640) and set(np.unique(wide)) <= set(range(len(CLASSES)))
    assert (cv2.resize(labels, (640, 480), interpolation=cv2.INTER_NEAREST) == wide).mean() > 0.85


@pytest.mark.shared
def test_demo_runs_a_third_party_segmenter_and_needs_its_adapter(shared: Path, tmp_path: Path) -> None:
    model = _coral(shared, "deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite")
    clip = shared / "data" / "pedestrian_video" / "pedestrians.avi"
    proc = run_cli(
        "demo",
        "--source",
        str(clip),
        "--max-frames",
        "4",
        "--headless",
        "--no-pacing",
        "--segmenter",
        str(model),
        "--segmenter-adapter",
        str(CITYSCAPES),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["models"]["segmenter"] == str(model) and summary["frames"] == 4
    missing = run_cli("demo", "--max-frames", "2", "--headless", "--segmenter", str(model))
    assert_one_line_error(missing, 2, "pass --segmenter-adapter CONFIG.toml")
    wrong = run_cli(
        "demo",
        "--max-frames",
        "2",
        "--headless",
        "--segmenter",
        str(model),
        "--segmenter-adapter",
        str(ADAPTERS / "ssd_coco.toml"),
    )
    assert_one_line_error(wrong, 2, "describes a detector, not a segmenter")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'kind = "segmenter"\noutput = "argmax"\nlabels = ["a"]\n[classes]\na = "person"\nextra = 1\n',
            "[classes] names 'extra', which is not one of the model's labels",
        ),
        (
            'kind = "segmenter"\noutput = "argmax"\nlabels = ["a"]\n[classes]\na = "pedestrian"\n',
            "maps 'a' to 'pedestrian'; ours are background, road, sidewalk, person, vehicle",
        ),
        (
            'kind = "segmenter"\noutput = "boxes"\nlabels = ["a"]\n[classes]\na = "person"\n',
            "output of a segmenter must be one of argmax, scores",
        ),
        (
            'kind = "segmenter"\noutput = "argmax"\nlabels = "nowhere.txt"\n[classes]\na = "person"\n',
            "label file not found",
        ),
        ('kind = "segmenter"\noutput = "argmax"\nlabel = ["a"]\n', "unknown key 'label'"),
        ('kind = "segmenter"\noutput = [', "not valid TOML"),
    ],
)
def test_bad_adapter_configs_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(UsageError, match=None) as err:
        load_adapter(config, CLASSES)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.tf
def test_ssd_style_detector_keeps_only_mapped_classes(tmp_path: Path) -> None:
    require_tf()
    import keras

    # A stand-in for a TFLite_Detection_PostProcess model: fixed outputs (boxes in ymin, xmin, ymax, xmax of the
    # input, COCO ids: a person and a car), a count of 2 of 3 slots.
    image = keras.Input((64, 96, 3), name="image")
    pooled = keras.layers.GlobalAveragePooling2D()(image)

    def constant(name: str, values: list[float], shape: tuple[int, ...]) -> keras.KerasTensor:
        dense = keras.layers.Dense(
            len(values),
            kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(values),
            name=f"{name}_dense",
        )
        return keras.layers.Reshape(shape, name=name)(dense(pooled))

    outputs = {
        "boxes": constant("boxes", [0.25, 0.5, 0.75, 0.75, 0.1, 0.1, 0.2, 0.2, 0, 0, 0, 0], (3, 4)),
        "classes": constant("classes", [0.0, 2.0, 0.0], (3,)),
        "scores": constant("scores", [0.9, 0.8, 0.95], (3,)),
        "count": constant("count", [2.0], (1,)),
    }
    keras.Model(image, outputs).save(tmp_path / "ssd.keras")
    proc = run_cli(
        "convert", str(tmp_path / "ssd.keras"), "-o", str(tmp_path / "ssd.tflite"), "--quantize", "fp32"
    )
    assert proc.returncode == 0, proc.stderr
    adapter = load_adapter(ADAPTERS / "ssd_coco.toml", ("person",))
    adapter = type(adapter)(
        **{**adapter.__dict__, "input": "unit"}
    )  # this float stand-in takes [0, 1] pixels
    with Detector(Runner(tmp_path / "ssd.tflite", num_threads=1), adapter=adapter) as detector:
        found = detector(np.zeros((128, 192, 3), np.uint8))  # twice the model input: boxes scale by 2
    assert len(found) == 1  # the car (id 2) is not mapped; the third slot is beyond the count
    assert np.allclose(found[0].box, (96.0, 32.0, 144.0, 96.0), atol=0.5) and found[0].score == pytest.approx(
        0.9
    )
