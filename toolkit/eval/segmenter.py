"""Score a street segmenter: per-class IoU and mean IoU (255 = ignore), beside MediaPipe's selfie segmenter.

>>> report = evaluate(load_predictor("scene_segmenter_int8.tflite"),
...                   parse_spec("synthetic:split=val,scenes=4,frames=200,every=5,jitter=0"), EvalConfig())
>>> report.metrics["person_iou"], report.tables["per_class"]

Each image is letterboxed into the model input exactly as the camera pipeline does it and the argmax labels are
scored twice from one confusion matrix each:

* at FRAME resolution (the headline figures ``person_iou``, ``miou``, ``iou_<class>``): the padding is cropped
  and the class scores are resized to the original image bilinearly before the argmax
  (:func:`toolkit.pipeline.segment.labels_at_frame`, what the camera demo draws), against the original mask;
* at INPUT resolution (``*_input``): against the mask letterboxed with nearest neighbour (what training sees).

IoU = TP / (TP + FP + FN) summed over all scored pixels of all images (not a mean of per-image IoUs); mean IoU
averages the classes that occur in the ground truth or the predictions (a class present in neither is undefined
and left out, one that is predicted but absent scores 0). ``tables["per_class"]`` says which classes exist in
the data (ground-truth pixels and images per class). Data sources, the COCO128 class mapping and fold rule:
:mod:`toolkit.data.segmentation_samples`. No TensorFlow here: ``.tflite`` models are scored on a device install.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.adapters.image import letterbox, unit_float
from toolkit.adapters.segment import CLASS_NAMES
from toolkit.data.augment import IGNORE
from toolkit.data.segmentation_samples import PERSON, SegSamples, load_samples, model_input
from toolkit.data.spec import DataSpec
from toolkit.errors import UsageError
from toolkit.eval import metrics as m
from toolkit.eval.config import EvalConfig
from toolkit.eval.image_inputs import image_input_hw
from toolkit.eval.predictor import Predictor
from toolkit.eval.report import EvalReport

CHUNK = 16  # images letterboxed and predicted at a time (bounds memory on large splits)
SELFIE_MODEL = ("models", "mediapipe-0.10.14", "selfie_segmentation.tflite")  # under the shared folder
SELFIE_THRESHOLD = 0.5  # person where MediaPipe's confidence exceeds this


@dataclass
class Confusions:
    """Pixel confusion matrices (row = true class, column = predicted) accumulated over images."""

    frame: np.ndarray  # (C, C) int64 at original image resolution
    input: np.ndarray  # (C, C) int64 at model input resolution
    images_with: np.ndarray  # (C,) int64 images whose ground truth holds the class


def score_labels(
    confusions: Confusions,
    labels: np.ndarray,
    labels_input: np.ndarray | None,
    mask: np.ndarray,
    mask_input: np.ndarray | None,
) -> None:
    """Add one image's predicted labels (frame and optional input resolution) against its masks (255 = ignore)."""
    classes = len(confusions.images_with)
    if labels.shape != mask.shape:
        raise UsageError(f"predicted labels {labels.shape} and mask {mask.shape} differ in size")
    confusions.frame += m.confusion_matrix(mask, labels, classes, ignore_index=IGNORE)
    if labels_input is not None and mask_input is not None:
        confusions.input += m.confusion_matrix(mask_input, labels_input, classes, ignore_index=IGNORE)
    present = np.unique(mask)
    confusions.images_with[present[present < classes]] += 1


def empty_confusions(classes: int) -> Confusions:
    return Confusions(
        np.zeros((classes, classes), np.int64),
        np.zeros((classes, classes), np.int64),
        np.zeros(classes, np.int64),
    )


def check_masks(mask: np.ndarray, classes: int, name: str) -> None:
    bad = np.unique(mask[(mask >= classes) & (mask != IGNORE)])
    if bad.size:
        raise UsageError(
            f"{name}: mask holds class {int(bad[0])}; the model predicts {classes} classes "
            f"(0-{classes - 1}, 255 = ignore)"
        )


def label_images(
    predictor: Predictor, images: list[np.ndarray], batch_size: int = 64, classes: int | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Segment original uint8 RGB images as the camera pipeline does: letterbox, predict, crop the padding, resize
    the scores to the image (bilinear) and argmax. Returns per image (labels at input resolution, labels at
    image size).
    ``classes``: the number of output channels expected (a UsageError otherwise)."""
    from toolkit.adapters.segment import labels_at_frame, labels_from_scores

    input_hw = input_hw_of(predictor)
    boxed = [model_input(image, None, input_hw) for image in images]
    batch = unit_float(np.stack([b[0] for b in boxed]))
    scores = predictor.predict({"image": batch}, batch_size=batch_size)["mask"]
    if classes is not None and scores.shape[-1] != classes:
        raise UsageError(
            f"{predictor.path}: output 'mask' has {scores.shape[-1]} classes, expected {classes}"
        )
    out = []
    for image, (_, _, transform), score in zip(images, boxed, scores, strict=True):
        out.append((labels_from_scores(score), labels_at_frame(score, transform, image.shape[:2])))
    return out


def predict_labels(
    predictor: Predictor, samples: SegSamples, classes: int, batch_size: int = 64
) -> Confusions:
    """Run the segmenter on every sample (:func:`label_images`) and accumulate both confusion matrices."""
    input_hw = input_hw_of(predictor)
    confusions = empty_confusions(classes)
    for start in range(0, len(samples), CHUNK):
        loaded = [samples.load(i) for i in range(start, min(start + CHUNK, len(samples)))]
        labelled = label_images(predictor, [image for image, _ in loaded], batch_size, classes)
        for j, ((_, mask), (labels_input, labels)) in enumerate(zip(loaded, labelled, strict=True)):
            check_masks(mask, classes, samples.names[start + j])
            mask_input = letterbox(mask, input_hw, pad_value=IGNORE, nearest=True)[0]
            score_labels(confusions, labels, labels_input, mask, mask_input)
    return confusions


def selfie_baseline(samples: SegSamples, classes: int, model: Path) -> Confusions:
    """MediaPipe selfie segmentation (256x256, RGB in [0, 1], letterboxed) as a person-vs-rest segmenter."""
    from toolkit.adapters.segment import labels_at_frame
    from toolkit.runtime import Runner

    confusions = empty_confusions(classes)
    with Runner(model, num_threads=1) as runner:
        name, spec = next(iter(runner.inputs.items()))
        input_hw = (int(spec.shape[1]), int(spec.shape[2]))
        for i in range(len(samples)):
            image, mask = samples.load(i)
            boxed, mask_input, transform = model_input(image, mask, input_hw)
            out = next(
                iter(runner.run(**{name: boxed[None].astype(np.float32) / np.float32(255.0)}).values())
            )
            person = out[0, ..., :1].astype(np.float32)  # scores of (rest, person), upsampled like ours
            labels = labels_at_frame(
                np.concatenate([np.full_like(person, SELFIE_THRESHOLD), person], axis=-1),
                transform,
                image.shape[:2],
            ) * np.uint8(PERSON)
            score_labels(confusions, labels, None, mask, None)
    return confusions


def input_hw_of(predictor: Predictor) -> tuple[int, int]:
    return image_input_hw(predictor, "segmenter")


def iou_metrics(confusions: Confusions, names: tuple[str, ...]) -> dict[str, float]:
    """Headline metrics from the confusion matrices: person/mean IoU at frame and input resolution, per class."""
    out: dict[str, float] = {}
    for suffix, cm in (("", confusions.frame), ("_input", confusions.input)):
        if not cm.any():
            continue
        iou = m.iou_per_class(cm)
        if "person" in names:
            out[f"person_iou{suffix}"] = _round(iou[names.index("person")])
        out[f"miou{suffix}"] = _round(m.mean_iou(cm))
        out[f"pixel_accuracy{suffix}"] = _round(np.trace(cm) / max(1, cm.sum()))
        if not suffix:
            out.update({f"iou_{name}": _round(v) for name, v in zip(names, iou, strict=True)})
    return {k: v for k, v in out.items() if v is not None}  # undefined (class absent everywhere) left out


def _round(value: float) -> float | None:
    """6 decimals; None for NaN (an undefined IoU), which JSON cannot hold."""
    return None if np.isnan(value) else round(float(value), 6)


def per_class_table(confusions: Confusions, names: tuple[str, ...]) -> list[dict]:
    iou, iou_in = m.iou_per_class(confusions.frame), m.iou_per_class(confusions.input)
    return [
        {
            "class": name,
            "iou": _round(iou[c]),
            "iou_input": _round(iou_in[c]),
            "gt_pixels": int(confusions.frame[c].sum()),
            "predicted_pixels": int(confusions.frame[:, c].sum()),
            "images_with_class": int(confusions.images_with[c]),
        }
        for c, name in enumerate(names)
    ]


def evaluate(predictor: Predictor, spec: DataSpec, config: EvalConfig = EvalConfig()) -> EvalReport:
    """Person IoU (primary), mean and per-class IoU of ``predictor`` on ``spec``; see the module docstring."""
    samples = load_samples(spec, config.limit)
    names = CLASS_NAMES
    confusions = predict_labels(predictor, samples, len(names), config.batch_size)
    d = samples.describe
    absent = [n for n, row in zip(names, confusions.frame, strict=True) if not row.any()]
    notes = [
        f"{len(samples)} images scored; source {d['source']}" + (f"; {d['rule']}" if "rule" in d else ""),
        f"frame-resolution figures: scores of the {'x'.join(map(str, input_hw_of(predictor)))} input, padding "
        "cropped, resized bilinearly to the original image, then argmax (the camera pipeline's output); "
        "'_input' figures: argmax at the input against the mask letterboxed with nearest neighbour; "
        "255 = ignore",
        "IoU sums pixels over all images; mean IoU averages the classes present in the ground truth or the "
        "predictions" + (f"; no ground-truth pixels of: {', '.join(absent)}" if absent else ""),
    ]
    tables = {"per_class": per_class_table(confusions, names)}
    if config.baselines:
        from toolkit.paths import shared_path

        selfie = shared_path(*SELFIE_MODEL, required=False)
        if selfie.is_file():
            base = selfie_baseline(samples, len(names), selfie)
            iou = m.iou_per_class(base.frame)
            tables["baselines"] = [
                {
                    "baseline": "mediapipe_selfie",
                    "description": (
                        "MediaPipe selfie segmentation 0.10.14 (256x256, person = confidence > 0.5; a close-up person "
                        "segmenter, the pretrained peer on the same images)"
                    ),
                    "person_iou": _round(iou[PERSON]),
                }
            ]
        else:
            notes.append(f"baseline skipped: {selfie} not found (shared MediaPipe models)")
    return EvalReport(
        kind="segmenter",
        model=str(predictor.path),
        model_format=predictor.format,
        data=str(spec),
        samples=len(samples),
        primary="person_iou",
        metrics=iou_metrics(confusions, names),
        tables=tables,
        notes=notes,
    )
