"""The contract between the generic trainer and one model kind.

A task module ``toolkit/train/task_<kind>.py`` defines ``TASK``, an object with the attributes and methods of
:class:`Task`. The trainer (``toolkit/train/trainer.py``) owns everything generic -- seeds, strategy scope,
callbacks (best checkpoint, early stopping, TensorBoard, resume), atomic saving and the training manifest -- and
asks the task only for data and for the loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from toolkit.data.spec import DataSpec
from toolkit.train.config import TrainConfig


@dataclass
class Datasets:
    train: Any  # tf.data.Dataset of (inputs, targets) batches, already batched with config.batch_size
    val: Any  # the same for validation (not augmented, not shuffled), or None
    train_size: int  # samples in one pass over the training data
    val_size: int
    describe: dict[str, Any] = field(default_factory=dict)  # what was used: specs, counts, split rule
    # Data-derived starting weights: layer name -> {weight name: array}, set by the trainer right after the
    # model is built (e.g. the behaviour modes' k-means anchors); their values go into the manifest via describe.
    initial_weights: dict[str, dict[str, Any]] = field(default_factory=dict)


def unit_batches(dataset: Any, batch_size: int, cache: bool = False) -> Any:
    """Batch a tf.data dataset of (uint8 image, targets) and scale the images to float32 [0, 1] in the graph.

    Image tasks yield uint8 from their Python generators: a quarter of the bytes of float32 through
    ``from_generator``, and the scaling runs once per batch in TensorFlow instead of per item in numpy.
    """
    import tensorflow as tf

    def to_unit(image: Any, targets: Any) -> tuple[Any, Any]:
        return tf.cast(image, tf.float32) * (1.0 / 255.0), targets

    batches = dataset.batch(batch_size).map(to_unit)
    return (batches.cache() if cache else batches).prefetch(2)


class Task(Protocol):
    kind: str  # a key of toolkit.capabilities.MODEL_KINDS
    default_data: str  # default training SPEC
    default_val_data: str  # default validation SPEC
    options_type: type  # frozen dataclass of task options ([task] table in a config file)

    def datasets(
        self, train: DataSpec, val: DataSpec, config: TrainConfig, options: Any, model_config: Any
    ) -> Datasets:
        """Load, split, augment (train only, seeded from config.seed), batch; return tf.data datasets."""

    def compile(self, model: Any, config: TrainConfig, options: Any, steps_per_epoch: int) -> None:
        """``model.compile(optimizer=..., loss=..., metrics=...)`` for this kind."""
