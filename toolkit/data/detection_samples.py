"""Person-detection samples from a data SPEC, shared by detector training and evaluation (numpy + OpenCV only).

Every source becomes a :class:`Samples`: ground truth in ORIGINAL image pixels (``DetectionRecord``, person =
class 0, ``crowd`` = an ignore region that is neither a hit nor a miss) and a loader for the original RGB image.
Model inputs are made by :func:`model_input`: the letterbox of the camera pipeline
(:func:`toolkit.adapters.image.letterbox`, grey 114 padding) of the RGB image, so training, evaluation,
calibration and the camera demo see the same pixels.

Sources (SPEC keys in :mod:`toolkit.data.spec`):

* ``coco128`` -- all 128 shared COCO128 images (person boxes only; 61 images hold the 254 person boxes, the
  rest are negatives). Cross-validation folds: images are sorted by file name and split into those with and
  without a person; the i-th image of each group goes to fold ``i % folds`` (stratified, deterministic, no
  seed). ``split=val`` is fold ``fold``, ``split=train`` the other folds, ``split=all`` (the default when no
  fold is named) everything.
* ``synthetic`` -- seeded street scenes (:mod:`toolkit.data.synthetic`). Scene seeds ``seed .. seed+scenes-1``
  (``split=val`` adds 1000, so validation scenes never appear in training); each scene renders ``frames``
  frames and keeps every ``every``-th. ``jitter`` (default 1) varies the camera per seed. People less than
  half visible, or under 8 px tall, are ignore regions when scoring. Rendered frames are cached on disk
  (``$TOOLKIT_HOME/cache/synthetic``), keyed by the scene config and a hash of the generator's source.
* ``yolo`` -- any YOLO folder (person = class 0); ``split`` uses the COCO128 rule with 5 folds, val = fold 0.
* ``coco-json`` -- COCO annotations; the category named "person" is used.
* ``pseudo`` -- frames of an image folder or a video labelled by the pretrained teachers, cached on disk
  (:mod:`toolkit.data.teachers_pseudo`); merged-people blobs are crowd (ignore) boxes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toolkit.adapters.image import Letterbox, letterbox
from toolkit.data import sample_sets
from toolkit.data.records import DetectionRecord
from toolkit.data.spec import DataSpec
from toolkit.errors import UsageError

PERSON = 0  # class id of a person in every record this module returns
IGNORE_VISIBILITY = 0.5  # synthetic people less visible than this are ignore regions when scoring
IGNORE_HEIGHT_PX = 8.0  # ...and so are synthetic people shorter than this (frame pixels)
COCO128_FOLDS = 4  # default number of cross-validation folds
YOLO_FOLDS = 5  # a yolo folder's split=val is fold 0 of this many (20 %)


@dataclass
class Samples:
    """Images with person boxes. ``records[i]`` is image i's ground truth in original pixels."""

    records: list[DetectionRecord]  # person boxes (class 0), crowd = ignore region
    visibility: list[np.ndarray]  # (K_i,) visible fraction of each box (1 for real photos)
    load: Callable[[int], np.ndarray]  # i -> original image, uint8 RGB (H, W, 3)
    describe: dict[str, Any] = field(default_factory=dict)  # what was loaded: source, split rule, counts

    def __len__(self) -> int:
        return len(self.records)

    def subset(self, indices: np.ndarray | list[int]) -> Samples:
        idx = [int(i) for i in indices]
        return Samples(
            [self.records[i] for i in idx],
            [self.visibility[i] for i in idx],
            lambda j: self.load(idx[j]),
            {**self.describe, "images": len(idx)},
        )


def model_input(image_rgb: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """Original uint8 RGB image -> (uint8 letterboxed (H, W, 3) model input, its transform); divide by 255 to feed."""
    return letterbox(image_rgb, input_hw)


def load_samples(spec: DataSpec, limit: int | None = None) -> Samples:
    """The person-detection samples of a SPEC (see the module docstring); at most ``limit`` images, in order."""
    loaders = {
        "coco128": _coco128,
        "synthetic": _synthetic,
        "yolo": _yolo,
        "coco-json": _coco_json,
        "pseudo": _pseudo,
    }
    if spec.name not in loaders:
        raise UsageError(
            f"data '{spec}': the detector is trained and scored on {', '.join(loaders)} data, not {spec.name}"
        )
    samples = loaders[spec.name](spec)
    samples, _ = sample_sets.first_items(samples, spec, limit)
    boxes = sum(int((~r.crowd).sum()) for r in samples.records)
    samples.describe.update(
        images=len(samples),
        person_boxes=boxes,
        images_with_person=sum(1 for r in samples.records if (~r.crowd).any()),
    )
    return samples


def fold_of(records: list[DetectionRecord], folds: int) -> np.ndarray:
    """Fold index per record: sorted by file name, stratified by "holds a person", i-th of a group -> i % folds."""
    names, has_person = [Path(r.path).name for r in records], [bool(len(r.boxes)) for r in records]
    return sample_sets.stratified_folds(names, has_person, folds)


def _photo_samples(records: list[DetectionRecord], describe: dict[str, Any]) -> Samples:
    from toolkit.data.image_folder import read_rgb

    people = [
        DetectionRecord(
            r.path,
            r.width,
            r.height,
            r.boxes[r.classes == PERSON],
            np.zeros(int((r.classes == PERSON).sum()), np.int64),
            image_id=i,
            crowd=r.crowd[r.classes == PERSON],
        )
        for i, r in enumerate(records)
    ]
    return Samples(
        people,
        [np.ones(len(r.boxes), np.float32) for r in people],
        lambda i: _checked_size(read_rgb(people[i].path), people[i]),
        describe,
    )


def _checked_size(image: np.ndarray, record: DetectionRecord) -> np.ndarray:
    if image.shape[:2] != (record.height, record.width):
        raise UsageError(
            f"{record.path}: image is {image.shape[1]}x{image.shape[0]} but its labels were made for "
            f"{record.width}x{record.height}"
        )
    return image


def _yolo_folder(spec: DataSpec, images: Path, labels: Path, folds: int, name: str) -> Samples:
    from toolkit.data.yolo import load_yolo_detection

    records = load_yolo_detection(images, labels, keep_classes=[PERSON])
    split = sample_sets.parse_fold_split(spec, folds)
    selected = [records[int(i)] for i in split.keep(fold_of(records, split.folds))]
    rule = (
        f"stratified {split.folds}-fold split by file name (person / no person, i-th image -> fold "
        f"i % {split.folds}); {split.rule_tail()}"
    )
    return _photo_samples(
        selected,
        {"source": name, "spec": str(spec), "images_dir": str(images), **split.describe(), "rule": rule},
    )


def _coco128(spec: DataSpec) -> Samples:
    from toolkit.paths import shared_path

    root = Path(spec.get("root")) if spec.get("root") else shared_path("data", "coco128")
    return _yolo_folder(
        spec,
        root / "images" / "train2017",
        root / "object_detection" / "labels" / "train2017",
        COCO128_FOLDS,
        "coco128",
    )


def _yolo(spec: DataSpec) -> Samples:
    return _yolo_folder(spec, Path(spec.get("images")), Path(spec.get("labels")), YOLO_FOLDS, "yolo")


def _coco_json(spec: DataSpec) -> Samples:
    from toolkit.data.coco_json import load_coco_detection

    file = Path(spec.get("json"))
    records, names = load_coco_detection(file, spec.get("images") or file.parent)
    person = [cid for cid, name in names.items() if name.strip().lower() == "person"]
    if not person:
        raise UsageError(
            f"{file}: no category named 'person' (categories: {', '.join(sorted(names.values()))})"
        )
    records = [
        DetectionRecord(
            r.path,
            r.width,
            r.height,
            r.boxes,
            np.where(r.classes == person[0], PERSON, -1),
            image_id=r.image_id,
            crowd=r.crowd,
        )
        for r in records
    ]
    return _photo_samples(records, {"source": "coco-json", "spec": str(spec), "category_id": person[0]})


def _pseudo(spec: DataSpec) -> Samples:
    from toolkit.data.teachers_pseudo import detection_samples

    return detection_samples(spec)


# ---------------------------------------------------------------------------------------------- synthetic


def _synthetic(spec: DataSpec) -> Samples:
    scenes = sample_sets.parse_scene_set(spec)
    parts = [_render_cached(config, scenes.frames, scenes.every) for config in scenes.configs()]
    records, visibility, where = [], [], []
    for p, (folder, boxes, vis, counts, hw) in enumerate(parts):
        starts = np.concatenate([[0], np.cumsum(counts)])
        for f in range(len(counts)):
            b, v = boxes[starts[f] : starts[f + 1]], vis[starts[f] : starts[f + 1]]
            ignore = (v < IGNORE_VISIBILITY) | (b[:, 3] - b[:, 1] < IGNORE_HEIGHT_PX)
            records.append(
                DetectionRecord(
                    folder / f"frame{f * scenes.every:05d}",
                    hw[1],
                    hw[0],
                    b,
                    np.zeros(len(b), np.int64),
                    image_id=len(records),
                    crowd=ignore,
                )
            )
            visibility.append(v)
            where.append((p, f))
    arrays = [np.load(folder / "frames.npy", mmap_mode="r") for folder, *_ in parts]

    def load(i: int) -> np.ndarray:
        p, f = where[i]
        return cv2.cvtColor(np.ascontiguousarray(arrays[p][f]), cv2.COLOR_BGR2RGB)

    describe = {
        **scenes.describe(spec),
        "rule": f"people with visibility < {IGNORE_VISIBILITY} or shorter than {IGNORE_HEIGHT_PX:g} px are "
        "ignore regions",
    }
    return Samples(records, visibility, load, describe)


def cache_root() -> Path:
    from toolkit.paths import state_dir

    return state_dir() / "cache" / "synthetic"


def _render_cached(
    config: Any, frames: int, every: int
) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """Render (or reuse) one scene: (folder, boxes (M, 4), visibility (M,), boxes per frame (F,), frame hw)."""
    folder = sample_sets.cached_scene(cache_root(), config, frames, every, "labels.npz", _write_scene)
    with np.load(folder / "labels.npz") as labels:
        return (
            folder,
            labels["boxes"],
            labels["visibility"],
            labels["counts"],
            (int(config.height), int(config.width)),
        )


def _write_scene(folder: Path, config: Any, frames: int, every: int) -> None:
    """Kept frames as ``frames.npy`` (K, H, W, 3) BGR; boxes, visibility and boxes per frame in ``labels.npz``."""
    shape = (sample_sets.kept_count(frames, every), config.height, config.width, 3)
    images = np.lib.format.open_memmap(folder / "frames.npy", mode="w+", dtype=np.uint8, shape=shape)
    boxes, vis, counts = [], [], []
    for k, frame in sample_sets.kept_frames(config, frames, every):
        images[k] = frame.image
        boxes.append(frame.boxes.reshape(-1, 4))
        vis.append(frame.visibility.reshape(-1))
        counts.append(len(frame.boxes))
    images.flush()
    del images
    np.savez(
        folder / "labels.npz",
        boxes=np.concatenate(boxes).astype(np.float32),
        visibility=np.concatenate(vis).astype(np.float32),
        counts=np.asarray(counts, np.int64),
    )
