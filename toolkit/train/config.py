"""Defaults for ``toolkit train`` in one typed place (a TOML config file mirrors these keys under [train])."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from toolkit.config import SEED_RANGE, Limits, check_ranges


@dataclass(frozen=True)
class TrainConfig:
    data: str | None = None  # training data SPEC (None: the task's default, e.g. mnist:split=train)
    val_data: str | None = None  # validation data SPEC (None: the task's default validation split)
    epochs: int = 20  # upper bound; early stopping usually ends sooner
    batch_size: int = 64  # global batch (split across replicas under --strategy mirrored)
    learning_rate: float = 1e-3  # peak learning rate (Adam, cosine decay over the run)
    seed: int = 0  # seeds Python, numpy, TF and data order; same seed -> same first-epoch loss
    deterministic: bool = (
        True  # TF op determinism: bit-identical reruns; false = same batches, faster CPU steps
    )
    patience: int = 5  # early stopping: epochs without val_loss improvement (0 disables)
    augment: bool = True  # task-appropriate augmentation of the training split
    strategy: Literal["default", "mirrored"] = "default"  # tf.distribute strategy
    devices: int = 2  # replicas for mirrored on a CPU-only host (logical CPU devices)
    resume: bool = False  # continue from the run directory's last backup instead of starting over
    run_dir: str | None = None  # logs, backups, best checkpoint (default: OUT without suffix + ".run")
    steps_per_epoch: int | None = None  # cap batches per epoch (quick runs, tests)
    verbose: int = -1  # Keras fit verbosity; -1 = progress bar on a terminal, one line per epoch otherwise

    LIMITS: ClassVar[Limits] = {  # valid values of every numeric key (flags, config files and --set)
        "epochs": (1, 100_000),
        "batch_size": (1, 65_536),
        "learning_rate": (1e-8, 10.0),
        "seed": SEED_RANGE,
        "patience": (0, 100_000),
        "devices": (1, 256),
        "steps_per_epoch": (1, 10_000_000),
        "verbose": (-1, 2),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "train config")
