"""Training task for the person detector (``toolkit train detector``).

Images are loaded once (:mod:`toolkit.data.detection_samples`; synthetic frames come from the render cache) and kept
as letterboxed uint8 model inputs, so an epoch costs only augmentation and target encoding:

* ``data`` (e.g. ``coco128:split=all``) is the main set; ``extra_data`` (e.g. synthetic street frames) is mixed in,
  ``extra_per_epoch`` of its images drawn afresh each epoch, so a few hundred photos are not drowned by thousands
  of rendered frames; ``repeat`` shows each main image that many times per epoch.
* Augmentation (train split only, when ``TrainConfig.augment``): with probability ``mosaic`` four images of the
  main data are tiled 2x2 at half size (people half as tall: COCO's close-ups become street-camera sized; the
  extra data -- street frames whose people are already small -- is never shrunk this way), then flip and
  scale/crop (:func:`toolkit.data.augment.augment_detection`), and colour jitter last, on the training window
  only (it costs per pixel: jittering the whole input before cutting the window was most of an item's cost).
  Items leave the generator as uint8 and are scaled to [0, 1] in the tf.data graph, per batch.
* ``crop_height`` x ``crop_width`` > 0: training items are random windows of that size cut from the augmented
  model input (a share ``person_crop`` of them placed over a person). The layers do not depend on the input
  size, so a model whose input is near the camera's resolution -- people as many pixels tall as the camera sees
  them -- trains at the cost of the window; validation, conversion and evaluation use the whole input.
* Targets: :func:`toolkit.models.detector_targets.encode_targets` on the input-pixel boxes; the box target
  carries the no-centre mask (``box_target_for_loss``) for :func:`toolkit.models.detector.detector_losses`.
  Ignore regions (``encode_targets(ignore_boxes=...)``: no heatmap loss under them, no box target) are crowd
  boxes (COCO ``iscrowd``; synthetic people under 0.5 visible or 8 px tall, which scoring ignores too), synthetic
  people less visible than ``min_visibility``, and people that a crop or a training window cuts down to less
  than ``cut_keep`` of their box: a person cut to their legs labelled with a legs-sized box taught the model to
  put small boxes on the lower half of whole people. With ``box_neighbours`` the box head is
  also trained on the 8 cells around each centre (:func:`spread_box_targets`): for people a few pixels wide
  the heatmap peak lands one cell off about half the time, and the box decoded there must be a trained one.

Every random choice comes from ``numpy.random.default_rng([config.seed, epoch])`` (epoch = how many times this
process has iterated the training set): the same seed gives the same batches. A resumed run restores the weights
and optimizer but draws its augmentation afresh from epoch 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from toolkit.adapters.image import resize_image
from toolkit.config import Limits, check_ranges
from toolkit.data.augment import AugmentConfig, augment_detection, clip_boxes, color_jitter
from toolkit.data.cutouts import Cutout, PasteConfig, paste_people, person_cutouts
from toolkit.data.detection_samples import Samples, load_samples, model_input
from toolkit.data.spec import DataSpec, parse_spec
from toolkit.errors import UsageError
from toolkit.models.detector import STRIDE
from toolkit.models.detector_targets import NO_BOX, box_target_for_loss, encode_targets
from toolkit.train.config import TrainConfig
from toolkit.train.task import Datasets, unit_batches
from toolkit.train.windows import window_origin, window_size

STRIDE_BACKBONE = 32  # the backbone's deepest stride: input sizes and training windows are multiples of it
TARGET, IGNORED = 0, 1  # box classes inside the task: a person to learn, an ignore region


@dataclass(frozen=True)
class DetectorTaskOptions:
    extra_data: str = ""  # a second training SPEC mixed into every epoch ("" = none), e.g. synthetic frames
    extra_per_epoch: int = 0  # images of extra_data drawn per epoch (0 = all of them every epoch)
    repeat: int = 1  # times each image of the main data appears per epoch
    mosaic: float = 0.5  # probability that a main-data image becomes a 2x2 mosaic of four half-size images
    min_visibility: float = 0.3  # synthetic people less visible than this are ignore regions, not targets
    cut_keep: float = 0.6  # people keeping less of their box area in a crop or window are ignore regions
    scale_min: float = 0.75  # random zoom range of the scale/crop augmentation (1 = unchanged); little
    scale_max: float = 1.5  # zoom-out: street-camera people are already a few pixels tall
    box_weight: float = 5.0  # weight of the box L1 loss against the heatmap focal loss
    min_radius: int = 1  # smallest heatmap Gaussian radius in output cells
    box_neighbours: bool = True  # also train the box head on the 8 cells around each centre (offsets clipped)
    # (the camera pipeline and eval average the size over those cells: DetectorConfig.neighbour_sizes)
    crop_height: int = 0  # train on random windows of this many rows of the model input (0 = whole input)
    crop_width: int = 0  # ...and this many columns; both multiples of 32 (the backbone's stride)
    person_crop: float = 0.0  # probability that a training window is placed over a random person
    paste: float = 0.0  # probability that a training window gets real people pasted in (toolkit.data.cutouts)
    paste_polygons: str = (
        ""  # instance polygons (YOLO-seg, person = panoptic id 1) of the main data's images:
    )
    # "coco128" = the shared COCO128 labels, or a folder; only images of the main (training) split are cut from
    paste_max: int = 3  # pasted people per window: 1..paste_max
    paste_min_height: float = 12.0  # pasted heights (input pixels) are log-uniform in [min, max]; max is also
    paste_max_height: float = 320.0  # capped at 0.95 of the window height (a pasted person is never cut)
    pretrained: str = (
        ""  # a .keras model whose convolutions start the mobilenet_v2 backbone ("" = random init),
    )
    # e.g. Coral's ImageNet MobileNetV2 rebuilt by `toolkit import ... --input-range unit` (toolkit.train.pretrained)
    freeze_backbone: bool = (
        False  # keep the pretrained backbone's weights fixed; only the FPN and heads train
    )

    LIMITS: ClassVar[Limits] = {  # valid values of the numeric [task] keys (checked on every build)
        "extra_per_epoch": (0, 10_000_000),
        "repeat": (1, 1000),
        "mosaic": (0.0, 1.0),
        "min_visibility": (0.0, 1.0),
        "cut_keep": (0.0, 1.0),
        "scale_min": (0.05, 20.0),
        "scale_max": (0.05, 20.0),
        "box_weight": (0.001, 1000.0),
        "min_radius": (0, 64),
        "crop_height": (0, 8192),
        "crop_width": (0, 8192),
        "person_crop": (0.0, 1.0),
        "paste": (0.0, 1.0),
        "paste_max": (1, 64),
        "paste_min_height": (2.0, 8192.0),
        "paste_max_height": (1.0, 8192.0),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "detector task options")


@dataclass
class _Pool:
    """Letterboxed uint8 inputs with their person boxes in input pixels, each a TARGET or IGNORED."""

    images: np.ndarray  # (N, H, W, 3) uint8 RGB
    boxes: list[np.ndarray]  # (K_i, 4) float32 xyxy input pixels
    classes: list[np.ndarray]  # (K_i,) int64 TARGET, or IGNORED (less visible than min_visibility, or crowd)


def _pool(samples: Samples, input_hw: tuple[int, int], min_visibility: float) -> _Pool:
    images = np.empty((len(samples), *input_hw, 3), np.uint8)
    boxes, classes = [], []
    for i in range(len(samples)):
        images[i], transform = model_input(samples.load(i), input_hw)
        record = samples.records[i]
        boxes.append(transform.to_input(record.boxes).reshape(-1, 4).astype(np.float32))
        target = (samples.visibility[i] >= min_visibility) & ~np.asarray(record.crowd, bool).reshape(-1)
        classes.append(np.where(target, TARGET, IGNORED).astype(np.int64))
    return _Pool(images, boxes, classes)


def spread_box_targets(
    boxes: np.ndarray,
    box_target: np.ndarray,
    input_hw: tuple[int, int],
    stride: int = STRIDE,
    size_hw: tuple[int, int] | None = None,
) -> np.ndarray:
    """Add box targets on the 8 cells around each box centre to a loss box target (``NO_BOX`` = no target).

    ``boxes``: (N, 4) input-pixel xyxy, as given to ``encode_targets``; ``box_target``: its output after
    ``box_target_for_loss``. A neighbour cell gets the box's ``sw, sh`` and the centre offset clipped to the
    cell, so a peak one cell off decodes the right size with the centre at most one cell edge away. Centre
    cells keep their exact targets; a neighbour cell shared by two people goes to the nearer centre.
    ``size_hw`` is the size reference of ``encode_targets`` (default ``input_hw``).
    """
    height, width = input_hw
    norm_h, norm_w = size_hw or input_hw
    out = box_target.copy()
    h, w = out.shape[:2]
    centre = out[..., 0] != NO_BOX
    nearest = np.full((h, w), np.inf)
    b = np.clip(np.asarray(boxes, np.float64).reshape(-1, 4), 0, [width, height, width, height])
    b = b[((b[:, 2:] - b[:, :2]) > 0).all(axis=1)]
    for x1, y1, x2, y2 in b:
        fx, fy = (x1 + x2) / 2 / stride, (y1 + y2) / 2 / stride
        ix, iy = min(int(fx), w - 1), min(int(fy), h - 1)
        size = (np.sqrt((x2 - x1) / norm_w), np.sqrt((y2 - y1) / norm_h))
        for jy in range(max(iy - 1, 0), min(iy + 2, h)):
            for jx in range(max(ix - 1, 0), min(ix + 2, w)):
                dist = (fx - jx - 0.5) ** 2 + (fy - jy - 0.5) ** 2
                if centre[jy, jx] or dist >= nearest[jy, jx]:
                    continue
                nearest[jy, jx] = dist
                out[jy, jx] = (min(max(fx - jx, 0.0), 1.0), min(max(fy - jy, 0.0), 1.0), *size)
    return out


def _mosaic(pool: _Pool, picks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four pool images at half size in a 2x2 grid; boxes and their classes follow."""
    h, w = pool.images.shape[1:3]
    hh, hw = h // 2, w // 2
    out = np.empty_like(pool.images[0])
    boxes = []
    for q, i in enumerate(picks):
        oy, ox = (q // 2) * hh, (q % 2) * hw
        out[oy : oy + hh, ox : ox + hw] = resize_image(pool.images[i], (hh, hw))
        b = pool.boxes[i] * np.float32([hw / w, hh / h, hw / w, hh / h]) + np.float32([ox, oy, ox, oy])
        boxes.append(b)
    return out, np.concatenate(boxes).reshape(-1, 4), np.concatenate([pool.classes[i] for i in picks])


def window_hw(options: DetectorTaskOptions, input_hw: tuple[int, int]) -> tuple[int, int]:
    """The training window (rows, columns): the crop options, or the whole input when they are 0."""
    return window_size((options.crop_height, options.crop_width), input_hw, STRIDE_BACKBONE, "detector")


def random_window(
    image: np.ndarray,
    boxes: np.ndarray,
    hw: tuple[int, int],
    rng: np.random.Generator,
    person_p: float = 0.0,
    classes: np.ndarray | None = None,
    cut_keep: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random ``hw`` window of an image, its xyxy boxes and their classes (default all TARGET).

    Boxes are clipped; those keeping < 10% of their area drop, and those keeping < ``cut_keep`` become IGNORED.
    With probability ``person_p`` (and a TARGET box in the image) the window holds the centre of a random
    target, anywhere inside it; otherwise its position is uniform.
    """
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    cls = np.full(len(b), TARGET, np.int64) if classes is None else np.asarray(classes, np.int64)
    targets = b[cls == TARGET]
    anchor = None
    if person_p > 0 and len(targets) and rng.random() < person_p:
        bx0, by0, bx1, by1 = targets[int(rng.integers(len(targets)))]
        anchor = ((by0 + by1) / 2, (bx0 + bx1) / 2)
    (h, w) = hw
    y, x = window_origin(image.shape[:2], hw, rng, anchor)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    cut = AugmentConfig(cut_visible=cut_keep, cut_class=IGNORED)
    moved, moved_cls = clip_boxes(b - np.float32([x, y, x, y]), cls, (h, w), area, cut)
    return image[y : y + h, x : x + w], moved, moved_cls


class DetectorItems:
    """The detector's training and validation items as plain numpy, independent of any input pipeline.

    Loads the pools once (letterboxed uint8 inputs, boxes, classes; the cut-out people), then ``train_epoch(k)``
    yields epoch ``k``'s augmented items and ``val_items()`` the fixed validation items, each an
    ``(image uint8 (h, w, 3), {"heatmap", "box"} float32 targets)`` pair. :meth:`DetectorTask.datasets` wraps them
    in tf.data; a script may batch them any other way (another Keras backend) and get the same data.
    """

    def __init__(
        self,
        train: DataSpec,
        val: DataSpec,
        config: TrainConfig,
        options: DetectorTaskOptions,
        model_config: Any,
    ) -> None:
        _check(options)
        self.config, self.options = config, options
        self.input_hw = tuple(int(v) for v in model_config.input_shape[:2])
        self.train_hw = window_hw(options, self.input_hw)
        self.main = load_samples(train)
        self.pools = [_pool(self.main, self.input_hw, options.min_visibility)]
        self.extra = None
        if options.extra_data:
            self.extra = load_samples(parse_spec(options.extra_data))
            self.pools.append(_pool(self.extra, self.input_hw, options.min_visibility))
        self.val_samples = load_samples(val)
        self.val_pool = _pool(self.val_samples, self.input_hw, options.min_visibility)
        self.n_main = len(self.main) * options.repeat
        self.n_extra = (
            0
            if self.extra is None
            else (
                min(options.extra_per_epoch, len(self.extra)) if options.extra_per_epoch else len(self.extra)
            )
        )
        self.augment = AugmentConfig(
            scale=(options.scale_min, options.scale_max), cut_visible=options.cut_keep, cut_class=IGNORED
        )
        self.cutouts = _cutouts(self.main, options)
        if self.cutouts and options.paste_min_height > 0.95 * self.train_hw[0]:
            raise UsageError(
                f"detector task options: paste_min_height {options.paste_min_height:g} does not fit the "
                f"{self.train_hw[0]}-row training window (at most 95 % of it)"
            )
        self.paste = PasteConfig(
            max_people=options.paste_max, heights=(options.paste_min_height, options.paste_max_height)
        )

    @property
    def train_size(self) -> int:
        return self.n_main + self.n_extra

    def encode(
        self, image: np.ndarray, all_boxes: np.ndarray, classes: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Targets for one item; sizes are relative to the whole input whatever the window."""
        options = self.options
        hw = image.shape[:2]
        boxes = all_boxes[classes == TARGET]
        heat, box, mask = encode_targets(
            boxes,
            hw,
            STRIDE,
            min_radius=options.min_radius,
            size_hw=self.input_hw,
            ignore_boxes=all_boxes[classes == IGNORED],
        )
        box = box_target_for_loss(box, mask)
        if options.box_neighbours:
            box = spread_box_targets(boxes, box, hw, size_hw=self.input_hw)
        return image, {"heatmap": heat, "box": box}  # uint8: unit_batches scales it to [0, 1]

    def epoch_plan(self, epoch: int, rng: np.random.Generator | None = None) -> list[tuple[int, int]]:
        """Epoch ``epoch``'s items in order, as (pool, image index) pairs: every main image ``repeat`` times and
        ``extra_per_epoch`` extra images, shuffled. Draws from ``rng`` (default: a fresh ``[seed, epoch]`` one)."""
        rng = np.random.default_rng([self.config.seed, epoch]) if rng is None else rng
        items = [(0, i % len(self.main)) for i in range(self.n_main)]
        if self.extra is not None:
            items += [(1, int(i)) for i in rng.permutation(len(self.extra))[: self.n_extra]]
        return [items[k] for k in rng.permutation(len(items))]

    def train_epoch(self, epoch: int):
        """Epoch ``epoch``'s augmented training items, from one random stream seeded ``[seed, epoch]``."""
        rng = np.random.default_rng([self.config.seed, epoch])
        for pool, index in self.epoch_plan(epoch, rng):
            yield self.item(pool, index, rng)

    def item(self, p: int, i: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One augmented training item from pool ``p``, image ``i`` (mosaic, flip/scale/crop, window, paste,
        colour jitter)."""
        config, options, pool = self.config, self.options, self.pools[p]
        if config.augment and p == 0 and rng.random() < options.mosaic:
            image, boxes, classes = _mosaic(pool, np.concatenate([[i], rng.integers(0, len(pool.images), 3)]))
        else:
            image, boxes, classes = pool.images[i], pool.boxes[i], pool.classes[i]
        if config.augment:
            image, boxes, classes = augment_detection(image, boxes, classes, rng, self.augment, jitter=False)
        if self.train_hw != self.input_hw:
            image, boxes, classes = random_window(
                image, boxes, self.train_hw, rng, options.person_crop, classes, options.cut_keep
            )
        if config.augment and self.cutouts and rng.random() < options.paste:  # after the window: never cut
            image, boxes, classes = paste_people(
                image, boxes, classes, self.cutouts, rng, self.paste, TARGET, IGNORED
            )
        if config.augment:  # after the window: colour jitter costs per pixel
            image = color_jitter(image, rng, self.augment)
        return self.encode(image, boxes, classes)

    def val_items(self):
        for i in range(len(self.val_pool.images)):
            yield self.encode(self.val_pool.images[i], self.val_pool.boxes[i], self.val_pool.classes[i])

    def describe(self) -> dict[str, Any]:
        return {
            "train": self.main.describe,
            "pasted_people": len(self.cutouts),
            "extra": self.extra.describe if self.extra is not None else None,
            "val": self.val_samples.describe,
            "per_epoch": {"main": self.n_main, "extra": self.n_extra},
            "input_hw": list(self.input_hw),
            "train_hw": list(self.train_hw),
            "augment": bool(self.config.augment),
        }


class DetectorTask:
    kind = "detector"
    default_data = "coco128:split=all"
    default_val_data = "synthetic:split=val,scenes=4,frames=100,every=5"
    options_type = DetectorTaskOptions

    def datasets(
        self,
        train: DataSpec,
        val: DataSpec,
        config: TrainConfig,
        options: DetectorTaskOptions,
        model_config: Any,
    ) -> Datasets:
        """tf.data pipelines of (image float32 [0, 1], {"heatmap", "box"} targets), batched; see the module."""
        _check(options)  # before importing TensorFlow: bad options fail fast
        import tensorflow as tf

        data = DetectorItems(train, val, config, options, model_config)
        epoch = {"n": 0}

        def train_items():
            epoch["n"] += 1
            yield from data.train_epoch(epoch["n"] - 1)

        def signature(h: int, w: int) -> tuple:
            return (
                tf.TensorSpec((h, w, 3), tf.uint8),
                {
                    "heatmap": tf.TensorSpec((h // STRIDE, w // STRIDE, 1), tf.float32),
                    "box": tf.TensorSpec((h // STRIDE, w // STRIDE, 4), tf.float32),
                },
            )

        train_ds = tf.data.Dataset.from_generator(train_items, output_signature=signature(*data.train_hw))
        val_ds = tf.data.Dataset.from_generator(data.val_items, output_signature=signature(*data.input_hw))
        return Datasets(
            train=unit_batches(train_ds, config.batch_size),
            val=unit_batches(val_ds, config.batch_size, cache=True),
            train_size=data.train_size,
            val_size=len(data.val_pool.images),
            describe=data.describe(),
        )

    def compile(
        self, model: Any, config: TrainConfig, options: DetectorTaskOptions, steps_per_epoch: int
    ) -> None:
        """Adam with cosine decay over the run; CenterNet focal loss on "heatmap", masked L1 on "box"."""
        import keras

        from toolkit.models.detector import detector_losses

        if options.pretrained:
            from toolkit.train.pretrained import start_backbone

            start_backbone(model, options.pretrained, options.freeze_backbone)
        elif options.freeze_backbone:
            raise UsageError(
                "detector task options: freeze_backbone needs pretrained (a frozen random backbone "
                "learns nothing)"
            )
        input_hw = (int(model.inputs[0].shape[1]), int(model.inputs[0].shape[2]))
        if window_hw(options, input_hw) != input_hw:
            # Window training: the layers are size-agnostic, only the functional model's input check pins H x W.
            # Lift it on this in-memory model; the saved file keeps its fixed input (conversion, evaluation).
            model.input_spec = None
        schedule = keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=max(1, config.epochs * steps_per_epoch)
        )
        model.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss=detector_losses(keras, box_weight=options.box_weight),
        )


def _cutouts(main: Samples, options: DetectorTaskOptions) -> list[Cutout]:
    """People to paste, cut from the main training split's own images (never from validation or scored data)."""
    if options.paste <= 0:
        return []
    folder = _polygon_folder(options)
    cutouts = person_cutouts(main.records, folder)
    if not cutouts:
        raise UsageError(
            f"detector task options: no usable person polygons for the training images in {folder}"
        )
    return cutouts


def _polygon_folder(options: DetectorTaskOptions) -> Path:
    """The ``paste_polygons`` folder ("coco128" = the shared COCO128 instance labels); UsageError if missing."""
    if not options.paste_polygons:
        raise UsageError(
            'detector task options: paste > 0 needs paste_polygons ("coco128" or a folder of '
            "YOLO-seg polygon files for the training images)"
        )
    if options.paste_polygons == "coco128":
        from toolkit.paths import shared_path

        return shared_path("data", "coco128", "instance_segmentation", "labels", "train2017")
    folder = Path(options.paste_polygons).expanduser()
    if not folder.is_dir():
        raise UsageError(f"detector task options: paste_polygons folder {folder} not found")
    return folder


def _check(options: DetectorTaskOptions) -> None:
    problems = [
        # single-key ranges are DetectorTaskOptions.LIMITS, checked when the options are built
        (options.scale_min > options.scale_max, "need scale_min <= scale_max"),
        (options.paste_min_height > options.paste_max_height, "need paste_min_height <= paste_max_height"),
    ]
    for bad, message in problems:
        if bad:
            raise UsageError(f"detector task options: {message}")
    if options.paste > 0:
        _polygon_folder(options)  # before any data is loaded


TASK = DetectorTask()
