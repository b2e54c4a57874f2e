"""Real-data loaders and augmentation: numpy + OpenCV + stdlib only (no TensorFlow; used on device installs).

Importing ``toolkit.data`` is cheap: the names below load their module (and OpenCV) on first use.
Every loader is deterministic; bad input is a one-line :class:`toolkit.errors.UsageError` naming the file (and
line, for text formats). Images are RGB; boxes are float32 (K, 4) pixel ``x1 y1 x2 y2``; masks uint8 (H, W)
class indices with 255 = ignore.

MNIST (``toolkit.data.mnist``)
    ``read_idx(path, expect_magic=None) -> ndarray``                       uint8 IDX, gzip'd or plain
    ``load_mnist(folder, prefix="t10k") -> (images (N,28,28) u8, labels (N,) u8)``
    ``split_indices(labels, fractions=(0.7, 0.1, 0.2), seed=0) -> (train, val, test)``  sorted int64 indices;
    the defaults are THE documented split (7000/1000/2000, stratified, seed 0): ``SPLIT_DESCRIPTION``.

Image folders (``toolkit.data.image_folder``)
    ``read_rgb(path) -> (H,W,3) u8``;  ``image_size(path) -> (width, height)``
    ``load_image(path, size_hw, keep_aspect=False, channels=3) -> (H,W,C) float32 in [0,1]``
    ``load_images(paths, size_hw, keep_aspect=False, channels=3) -> (N,H,W,C) float32``
    ``list_images(folder, recursive=True) -> [Path]``
    ``scan_image_folder(root, class_names=None) -> ImageFolder(paths, labels int64, class_names)``

Detection records (``toolkit.data.records``)
    ``DetectionRecord(path, width, height, boxes, classes, image_id=0, crowd=...)``
    ``PolygonRecord(path, width, height, polygons [(P,2) px], classes, image_id=0)``

YOLO labels (``toolkit.data.yolo``); COCO128 boxes: person = 0, COCO128 polygons / masks: person = 1
    ``load_yolo_detection(images_dir, labels_dir, keep_classes=None, valid_classes=None) -> [DetectionRecord]``
    ``load_yolo_segmentation(images_dir, labels_dir, keep_classes=None, valid_classes=None) -> [PolygonRecord]``
    ``read_yolo_boxes(path, valid_classes=None) -> (classes, cxcywh normalised)``
    ``read_yolo_polygons(path, valid_classes=None) -> (classes, [polygon (P,2) normalised])``
    ``read_class_names(config_yaml) -> {id: name}``;  ``orphan_labels(images_dir, labels_dir) -> [Path]`` (ignored)

COCO JSON (``toolkit.data.coco_json``)
    ``load_coco_detection(json_path, images_dir=None, keep_categories=None) -> ([DetectionRecord], {id: name})``
    ``coco_ground_truth(records, categories) -> dict``      for pycocotools ``COCO()``
    ``coco_detections(records, predictions) -> [dict]``     for ``COCO.loadRes``; predictions[i] = (boxes, scores, classes)

Masks (``toolkit.data.masks``)
    ``MaskMapping(table, default, class_names)``; ``PERSON_FROM_PANOPTIC`` (person 1 -> 1, unlabeled -> 255, rest -> 0)
    ``read_mask(path) -> (H,W) u8``;  ``load_mask(path, mapping=None, size_hw=None, expect_hw=None)``
    ``remap_mask(mask, mapping)``;  ``resize_mask(mask, size_hw)``;  ``pair_masks(images_dir, masks_dir) -> [(image, mask)]``
    ``load_image_and_mask(image_path, mask_path, size_hw=None, mapping=None) -> (float32 image, u8 mask)``
    ``polygons_to_mask(polygons, values, size_hw, background=0) -> (H,W) u8``

Trajectories (``toolkit.data.trajectories``): ETH/UCY, 8 observed + 12 predicted steps of 0.4 s
    ``read_trajectory_file(path) -> (R,4) float64 [frame, ped, x, y]``
    ``make_windows(rows, scene="", obs_len=8, pred_len=12, frame_step=10, stride=1) -> Windows``
    ``load_split(root, scene, split, obs_len=8, pred_len=12, stride=1) -> Windows(obs, fut, scene, ped, frame)``
    ``to_relative(obs, fut=None) -> (obs_rel, fut_rel, origin)``;  ``from_relative(tracks_rel, origin)``
    ``constant_velocity(obs, pred_len=12)``;  ``ade(pred, fut)``;  ``fde(pred, fut)``;  ``random_rotation(obs, fut, rng)``

Augmentation and resizing (``toolkit.data.augment``); randomness only from the Generator passed in
    ``letterbox(image, out_hw, pad_value=None, nearest=False) -> (image, Letterbox(scale, pad_x, pad_y, image_hw))``
    with ``Letterbox.to_input(boxes)`` / ``Letterbox.to_image(boxes, clip=True)``;  ``resize_image(image, size_hw, nearest=False)``
    ``hflip(image, boxes=None, mask=None)``;  ``flip_trajectories(obs, fut)``
    ``random_scale_crop(image, rng, boxes=None, classes=None, mask=None, config=DEFAULT)``
    ``color_jitter(image, rng, config=DEFAULT)``;  ``augment_detection(...)``;  ``augment_segmentation(...)``
    ``AugmentConfig`` holds every knob and its default.

Synthetic data generators live in ``toolkit.data.synthetic_*`` (imported by their module names).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "mnist": ("read_idx", "load_mnist", "split_indices", "SPLIT_DESCRIPTION"),
    "image_folder": (
        "read_rgb",
        "image_size",
        "load_image",
        "load_images",
        "list_images",
        "scan_image_folder",
        "ImageFolder",
        "IMAGE_EXTENSIONS",
    ),
    "records": ("DetectionRecord", "PolygonRecord"),
    "yolo": (
        "load_yolo_detection",
        "load_yolo_segmentation",
        "read_yolo_boxes",
        "read_yolo_polygons",
        "read_class_names",
        "orphan_labels",
        "PERSON_DETECT",
        "PERSON_PANOPTIC",
    ),
    "coco_json": ("load_coco_detection", "coco_ground_truth", "coco_detections"),
    "masks": (
        "MaskMapping",
        "PERSON_FROM_PANOPTIC",
        "read_mask",
        "load_mask",
        "remap_mask",
        "resize_mask",
        "pair_masks",
        "load_image_and_mask",
        "polygons_to_mask",
    ),
    "trajectories": (
        "Windows",
        "read_trajectory_file",
        "make_windows",
        "concat_windows",
        "load_split",
        "to_relative",
        "from_relative",
        "constant_velocity",
        "ade",
        "fde",
        "random_rotation",
    ),
    "augment": (
        "AugmentConfig",
        "Letterbox",
        "letterbox",
        "resize_image",
        "hflip",
        "flip_trajectories",
        "random_scale_crop",
        "clip_boxes",
        "color_jitter",
        "augment_detection",
        "augment_segmentation",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'toolkit.data' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"toolkit.data.{module}"), name)
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
