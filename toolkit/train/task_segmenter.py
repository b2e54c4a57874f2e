"""Training task for the street segmenter (``toolkit train segmenter``).

Images and masks are loaded once (:mod:`toolkit.data.segmentation_samples`; synthetic frames come from the render
cache) and kept as letterboxed uint8 model inputs -- the camera pipeline's letterbox, masks nearest with 255
(ignore) padding -- so an epoch costs only augmentation and the model:

* ``data`` (e.g. synthetic street frames) is the main set; ``extra_data`` (e.g. ``coco128:split=all``) is mixed
  in, each of its images ``extra_repeat`` times per epoch; ``per_epoch`` > 0 draws that many of the pooled items
  afresh each epoch (a shorter epoch on a slow machine; 0 = all of them).
* Augmentation (train split only, when ``TrainConfig.augment``): flip, scale/crop (zooming out pads the mask
  with ignore) (:func:`toolkit.data.augment.augment_segmentation`), then colour jitter on the training window
  only (it costs per pixel). Items leave the generator as uint8; ``unit_batches`` scales them per batch.
* ``crop_height`` x ``crop_width`` > 0: training items are random windows of that size cut from the augmented
  model-size input (the model is fully convolutional, so the weights do not depend on the input size). A step on
  120x160 crops costs a quarter of a step on 240x320 frames and, measured on the synthetic street, teaches about
  as much per step; validation, saving, conversion and evaluation stay at the model's full input size.
* Loss (:func:`segmentation_loss`): per image, the cross-entropy of the ``mask`` softmax averaged over the pixels
  that are not 255 (ignore), each pixel weighted by its class's ``class_weights`` entry (small classes such as
  person count more), plus ``dice_weight`` times the soft Dice loss of the ``dice_classes`` (an overlap loss
  that does not drown a 1 %-of-pixels class; on the synthetic street it raised person IoU from 0.39 to 0.51 at
  the same budget). The ``person_iou`` / ``miou`` metrics are Keras IoU metrics that skip 255.

Every random choice comes from ``numpy.random.default_rng([config.seed, epoch])`` (epoch = how many times this
process has iterated the training set): the same seed gives the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from toolkit.adapters.segment import CLASS_NAMES
from toolkit.config import Limits, check_ranges
from toolkit.data.augment import IGNORE, AugmentConfig, augment_segmentation, color_jitter
from toolkit.data.segmentation_samples import PERSON, SegSamples, load_samples, model_input
from toolkit.data.spec import DataSpec, parse_spec
from toolkit.errors import UsageError
from toolkit.train.config import TrainConfig
from toolkit.train.task import Datasets, unit_batches
from toolkit.train.windows import window_origin, window_size


@dataclass(frozen=True)
class SegmenterTaskOptions:
    extra_data: str = ""  # a second training SPEC mixed into every epoch ("" = none), e.g. coco128:split=all
    extra_repeat: int = 1  # times each extra_data image appears in an epoch's pool
    per_epoch: int = 0  # items drawn afresh from the pool each epoch (0 = the whole pool every epoch)
    class_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 2.0, 1.5)  # loss weight per class, CLASS_NAMES order
    crop_height: int = 0  # train on random windows of this many rows of the model input (0 = whole input)
    crop_width: int = 0  # ...and this many columns; multiples of the model's stride (8; 16 for mobilenet_v2)
    person_crop: float = 0.0  # probability that a training window is placed over a random person pixel
    dice_weight: float = 1.0  # weight of the soft Dice loss beside the cross-entropy (0 = cross-entropy only)
    dice_classes: tuple[str, ...] = ("person",)  # classes whose Dice loss is added (names from CLASS_NAMES)
    scale_min: float = 0.7  # random zoom range of the scale/crop augmentation (1 = unchanged)
    scale_max: float = 1.5
    min_lr_fraction: float = 0.02  # cosine decay ends at this fraction of the peak learning rate
    pretrained: str = (
        ""  # a .keras model whose convolutions start a mobilenet_v2 backbone ("" = random init), e.g.
    )
    # Coral's ImageNet MobileNetV2 rebuilt by `toolkit import ... --input-range unit` (toolkit.train.pretrained)
    freeze_backbone: bool = False  # keep the pretrained backbone's weights fixed; only the head trains

    LIMITS: ClassVar[Limits] = {  # valid values of the numeric [task] keys (checked on every build)
        "extra_repeat": (1, 1000),
        "per_epoch": (0, 10_000_000),
        "class_weights": (0.0, 1000.0),
        "crop_height": (0, 8192),
        "crop_width": (0, 8192),
        "person_crop": (0.0, 1.0),
        "dice_weight": (0.0, 1000.0),
        "scale_min": (0.05, 20.0),
        "scale_max": (0.05, 20.0),
        "min_lr_fraction": (0.0, 0.99),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "segmenter task options")


@dataclass
class Pool:
    """Letterboxed uint8 model inputs and masks of one source."""

    images: np.ndarray  # (N, H, W, 3) uint8 RGB
    masks: np.ndarray  # (N, H, W) uint8 class indices, 255 = ignore


def make_pool(samples: SegSamples, input_hw: tuple[int, int]) -> Pool:
    """Load and letterbox every sample once."""
    images = np.empty((len(samples), *input_hw, 3), np.uint8)
    masks = np.empty((len(samples), *input_hw), np.uint8)
    for i in range(len(samples)):
        image, mask = samples.load(i)
        images[i], masks[i], _ = model_input(image, mask, input_hw)
    return Pool(images, masks)


def segmentation_loss(
    class_weights: np.ndarray, dice_weight: float = 0.0, dice_ids: tuple[int, ...] = ()
) -> Any:
    """The training loss for ``mask`` (Keras 3): ``loss(y_true, y_pred) -> (B,)`` one value per image.

    ``y_true`` (B, H, W) int labels with 255 = ignore, ``y_pred`` (B, H, W, C) softmax. Per image: the sum over
    valid pixels of ``class_weights[label] * -log p[label]`` divided by the number of valid pixels, plus
    ``dice_weight`` times the mean over ``dice_ids`` of the soft Dice loss ``1 - (2 |t q| + 1) / (|t| + |q| + 1)``
    (t = the class's one-hot truth, q = its probability, both zero on ignore pixels).
    """
    import keras

    ops = keras.ops
    classes = len(class_weights)
    table = np.zeros(256, np.float32)  # label -> weight; 255 (ignore) and unknown labels weigh 0
    table[:classes] = class_weights

    def loss(y_true: Any, y_pred: Any) -> Any:
        y = ops.cast(y_true, "int32")
        valid = ops.cast(ops.not_equal(y, IGNORE), "float32")
        truth = ops.one_hot(ops.where(ops.equal(y, IGNORE), 0, y), classes) * valid[..., None]
        probs = ops.cast(y_pred, "float32")
        ce = -ops.sum(truth * ops.log(ops.clip(probs, 1e-7, 1.0)), axis=-1)
        weights = ops.take(ops.convert_to_tensor(table), y)
        total = ops.sum(weights * ce, axis=(1, 2)) / ops.maximum(ops.sum(valid, axis=(1, 2)), 1.0)
        for c in dice_ids:
            t, q = truth[..., c], probs[..., c] * valid
            overlap = (2.0 * ops.sum(t * q, axis=(1, 2)) + 1.0) / (
                ops.sum(t, axis=(1, 2)) + ops.sum(q, axis=(1, 2)) + 1.0
            )
            total = total + (dice_weight / len(dice_ids)) * (1.0 - overlap)
        return total

    return loss


def crop_hw(options: SegmenterTaskOptions, input_hw: tuple[int, int], multiple: int = 8) -> tuple[int, int]:
    """The training window (rows, columns): the crop options, or the whole input when they are 0; multiples of
    the model's deepest stride (8 for the U-Net-lite, 16 for the MobileNetV2 design)."""
    return window_size((options.crop_height, options.crop_width), input_hw, multiple, "segmenter")


def random_window(
    image: np.ndarray, mask: np.ndarray, hw: tuple[int, int], rng: np.random.Generator, person_p: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """A random ``hw`` window of an image and its mask (the whole arrays when they are that size).

    With probability ``person_p`` (and a person in the mask) the window covers a randomly chosen person pixel,
    anywhere inside it; otherwise its position is uniform.
    """
    anchor = None
    if person_p > 0 and rng.random() < person_p:
        ys, xs = np.nonzero(mask == PERSON)
        if len(ys):
            k = int(rng.integers(len(ys)))
            anchor = (int(ys[k]), int(xs[k]))
    y, x = window_origin(image.shape[:2], hw, rng, anchor)
    return image[y : y + hw[0], x : x + hw[1]], mask[y : y + hw[0], x : x + hw[1]]


def check_options(options: SegmenterTaskOptions, num_classes: int) -> None:
    problems = [
        # single-key ranges are SegmenterTaskOptions.LIMITS, checked when the options are built
        (
            len(options.class_weights) != num_classes,
            f"class_weights needs {num_classes} numbers (one per class: {', '.join(CLASS_NAMES[:num_classes])}), "
            f"got {len(options.class_weights)}",
        ),
        (not any(w > 0 for w in options.class_weights), "class_weights must not be all 0"),
        (options.scale_min > options.scale_max, "need scale_min <= scale_max"),
        (
            options.freeze_backbone and not options.pretrained,
            "freeze_backbone needs pretrained (a frozen random backbone learns nothing)",
        ),
        (
            any(c not in CLASS_NAMES[:num_classes] for c in options.dice_classes),
            f"dice_classes must name classes of {', '.join(CLASS_NAMES[:num_classes])}, got {options.dice_classes}",
        ),
    ]
    for bad, message in problems:
        if bad:
            raise UsageError(f"segmenter task options: {message}")


def _check_labels(pool: Pool, spec: str, num_classes: int) -> None:
    labels = np.unique(pool.masks)
    bad = labels[(labels >= num_classes) & (labels != IGNORE)]
    if bad.size:
        raise UsageError(
            f"data '{spec}': masks hold class {int(bad[0])} but the model has {num_classes} classes "
            "(set model.num_classes)"
        )


class SegmenterItems:
    """The segmenter's training items as plain numpy, independent of any input pipeline.

    Loads the main and extra pools once (letterboxed uint8 inputs and masks); ``train_epoch(k)`` yields epoch
    ``k``'s augmented ``(image uint8 (h, w, 3), mask uint8 (h, w))`` items, windows of ``train_hw`` (the whole
    input when it equals the input size), drawn from ``numpy.random.default_rng([seed, k])``. Used by
    :meth:`SegmenterTask.datasets` and by quantization-aware training (:mod:`toolkit.convert.qat`).
    """

    def __init__(
        self,
        train: DataSpec,
        config: TrainConfig,
        options: SegmenterTaskOptions,
        model_config: Any,
        train_hw: tuple[int, int] | None = None,
    ) -> None:
        classes = int(model_config.num_classes)
        check_options(options, classes)
        self.config, self.options = config, options
        self.input_hw = (int(model_config.input_shape[0]), int(model_config.input_shape[1]))
        multiple = 16 if getattr(model_config, "backbone", "unet") == "mobilenet_v2" else 8
        self.train_hw = train_hw or crop_hw(options, self.input_hw, multiple)
        self.main = load_samples(train)
        self.pools = [make_pool(self.main, self.input_hw)]
        self.extra = None
        if options.extra_data:
            self.extra = load_samples(parse_spec(options.extra_data))
            self.pools.append(make_pool(self.extra, self.input_hw))
        for pool, spec in zip(self.pools, [str(train), options.extra_data], strict=False):
            _check_labels(pool, spec, classes)
        self.items = [(0, i) for i in range(len(self.main))]
        if self.extra is not None:
            self.items += [(1, i) for _ in range(options.extra_repeat) for i in range(len(self.extra))]
        self.per_epoch = min(options.per_epoch, len(self.items)) if options.per_epoch else len(self.items)
        self.augment = AugmentConfig(scale=(options.scale_min, options.scale_max))

    def train_epoch(self, epoch: int):
        """Epoch ``epoch``'s augmented items (flip/scale/crop, window, colour jitter), seeded ``[seed, epoch]``."""
        rng = np.random.default_rng([self.config.seed, epoch])
        for k in rng.permutation(len(self.items))[: self.per_epoch]:
            p, i = self.items[k]
            image, mask = self.pools[p].images[i], self.pools[p].masks[i]
            if self.config.augment:
                image, mask = augment_segmentation(image, mask, rng, self.augment, jitter=False)
            if self.train_hw != self.input_hw:
                image, mask = random_window(image, mask, self.train_hw, rng, self.options.person_crop)
            if self.config.augment:  # after the window: colour jitter costs per pixel
                image = color_jitter(image, rng, self.augment)
            yield image, mask

    def describe(self) -> dict[str, Any]:
        return {
            "train": self.main.describe,
            "extra": self.extra.describe if self.extra is not None else None,
            "per_epoch": self.per_epoch,
            "pool": len(self.items),
            "input_hw": list(self.input_hw),
            "train_hw": list(self.train_hw),
            "augment": bool(self.config.augment),
        }


class SegmenterTask:
    kind = "segmenter"
    default_data = "synthetic:split=train,scenes=24,frames=200,every=5"
    default_val_data = "synthetic:split=val,scenes=4,frames=200,every=5,jitter=0"
    options_type = SegmenterTaskOptions

    def datasets(
        self,
        train: DataSpec,
        val: DataSpec | None,
        config: TrainConfig,
        options: SegmenterTaskOptions,
        model_config: Any,
    ) -> Datasets:
        """tf.data pipelines of (image float32 [0, 1], {"mask": int32 labels, 255 = ignore}), batched."""
        import tensorflow as tf

        data = SegmenterItems(train, config, options, model_config)
        epoch = {"n": 0}

        def train_items():
            epoch["n"] += 1
            for image, mask in data.train_epoch(epoch["n"] - 1):
                yield image, {"mask": mask.astype(np.int32)}  # uint8: unit_batches scales it to [0, 1]

        val_samples = load_samples(val) if val is not None else None
        val_pool = make_pool(val_samples, data.input_hw) if val_samples is not None else None

        def val_items():
            for i in range(len(val_pool.images)):
                yield val_pool.images[i], {"mask": val_pool.masks[i].astype(np.int32)}

        def signature(h: int, w: int) -> tuple:
            return tf.TensorSpec((h, w, 3), tf.uint8), {"mask": tf.TensorSpec((h, w), tf.int32)}

        train_ds = tf.data.Dataset.from_generator(train_items, output_signature=signature(*data.train_hw))
        val_ds = None
        if val_pool is not None:
            val_ds = tf.data.Dataset.from_generator(val_items, output_signature=signature(*data.input_hw))
            val_ds = unit_batches(val_ds, config.batch_size, cache=True)
        describe = data.describe()
        describe = {
            "train": describe.pop("train"),
            "extra": describe.pop("extra"),
            "val": val_samples.describe if val_samples is not None else None,
            **describe,
        }
        return Datasets(
            train=unit_batches(train_ds, config.batch_size),
            val=val_ds,
            train_size=data.per_epoch,
            val_size=len(val_pool.images) if val_pool is not None else 0,
            describe=describe,
        )

    def compile(
        self, model: Any, config: TrainConfig, options: SegmenterTaskOptions, steps_per_epoch: int
    ) -> None:
        """Adam with cosine decay; :func:`segmentation_loss` on "mask"; person IoU and mean IoU metrics."""
        import keras

        from toolkit.train.task_classifier import adam_cosine

        classes = int(model.outputs[0].shape[-1])  # the one output, "mask" (H, W, classes)
        check_options(options, classes)
        if options.pretrained:
            from toolkit.train.pretrained import start_backbone

            start_backbone(model, options.pretrained, options.freeze_backbone)
        input_hw = (int(model.inputs[0].shape[1]), int(model.inputs[0].shape[2]))
        if crop_hw(options, input_hw) != input_hw:
            # Crop training: the layers are size-agnostic, only the functional model's input check pins H x W.
            # Lift it on this in-memory model; the saved file keeps its fixed input (conversion, evaluation).
            model.input_spec = None

        def iou(ids: list[int], name: str) -> Any:
            return keras.metrics.IoU(classes, ids, name=name, sparse_y_pred=False, ignore_class=IGNORE)

        metrics = [iou(list(range(classes)), "miou")]
        if classes > CLASS_NAMES.index("person"):
            metrics.insert(0, iou([CLASS_NAMES.index("person")], "person_iou"))
        model.compile(
            optimizer=adam_cosine(config, steps_per_epoch, options.min_lr_fraction),
            loss={
                "mask": segmentation_loss(
                    np.asarray(options.class_weights, np.float32),
                    options.dice_weight,
                    tuple(CLASS_NAMES.index(c) for c in options.dice_classes),
                )
            },
            metrics={"mask": metrics},
        )


TASK = SegmenterTask()
