"""Training task for the behaviour Transformer: trajectory windows in the heading frame -> future + crossing.

Data: ETH/UCY windows (``eth_ucy:scene=S,split=train``: leave-one-scene-out, no crossing labels) and, through the
``extra_data`` option, synthetic street windows with crossing labels (``synthetic:split=train,...``). Every window
is made relative to its last observed point and rotated into the heading frame
(:mod:`toolkit.adapters.behaviour`) exactly as evaluation and the camera pipeline do, so random rotation
augmentation is built in; the training split is further mirrored across the heading axis and scaled a little.

Loss: mean Euclidean displacement over the future steps (the ADE itself, in metres) plus ``fde_weight`` times the
last step's displacement, and a binary cross-entropy on ``crossing`` counted only where the window has a crossing
label (weight 0 on ETH/UCY windows), via per-output sample weights. Both weights also balance recordings
(``balance``): the dense UCY student recordings would otherwise decide what "typical" walking looks like.

Multi-modal models (``modes`` K > 1): winner-takes-all -- only the mode closest to the truth (by the same
ADE + ``fde_weight`` FDE) is regressed -- plus ``mode_weight`` times the cross-entropy of ``mode_probs`` against
the index of that closest mode (a stop-gradient target), so the probabilities learn which mode is right;
``top_weight`` > 0 also regresses the mode the model currently rates most likely (chosen without gradient), so
the mode that the most-likely figure reports is pulled toward a good point estimate. ``anchors`` starts the
K residual biases at k-means centres of the training residuals (:func:`mode_anchors`) instead of near zero.
Social models (``neighbours`` M > 0) also get the neighbour input (:func:`toolkit.adapters.behaviour.neighbour_input`),
mirrored and scaled with their window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from toolkit.adapters.behaviour import OLDER_SCALE, neighbour_input, normalise
from toolkit.config import Limits, check_ranges
from toolkit.data.behaviour_windows import BehaviourWindows, load_windows
from toolkit.data.spec import DataSpec, parse_spec
from toolkit.train.config import TrainConfig
from toolkit.train.task import Datasets

SHIPPED_SYNTHETIC = (
    "synthetic:split=train,scenes=8,frames=3000"  # ~25k crossing-labelled windows, ~30 s to simulate
)
SHIPPED_SYNTHETIC_VAL = "synthetic:split=val,scenes=2,frames=3000"


@dataclass(frozen=True)
class BehaviourOptions:
    extra_data: str = (
        SHIPPED_SYNTHETIC  # second training SPEC mixed in (crossing labels come from it); "" = none
    )
    extra_val_data: str = (
        SHIPPED_SYNTHETIC_VAL  # second validation SPEC mixed into the validation set; "" = none
    )
    extra_weight: float = (
        1.0  # weight of the extra SPECs' windows in the trajectory loss (crossing loss: full)
    )
    fde_weight: float = 0.5  # extra weight of the last step's displacement in the trajectory loss
    crossing_weight: float = 1.0  # weight of the crossing cross-entropy (counted only on labelled windows)
    balance: float = (
        0.5  # recording weights n^-balance: 0 = every window counts the same, 1 = every recording
    )
    mirror: bool = True  # augmentation: mirror half the windows across their heading axis
    scale: float = 0.1  # augmentation: scale each window by a random factor in [1 - scale, 1 + scale]
    mode_weight: float = 0.5  # weight of the mode-probability cross-entropy (multi-modal models)
    top_weight: float = (
        0.0  # weight of the regression of the MOST LIKELY mode (multi-modal; a point estimate)
    )
    anchors: bool = False  # multi-modal: start the K modes at k-means centres of the training residuals
    relax: float = (
        0.0  # multi-modal: relaxed winner-takes-all, the other modes get this share of the regression
    )

    LIMITS: ClassVar[Limits] = {  # valid values of the numeric [task] keys (checked on every build)
        "extra_weight": (0.0, 1000.0),
        "fde_weight": (0.0, 1000.0),
        "crossing_weight": (0.0, 1000.0),
        "balance": (0.0, 1.0),
        "scale": (0.0, 0.9),
        "mode_weight": (0.0, 1000.0),
        "top_weight": (0.0, 1000.0),
        "relax": (0.0, 0.5),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "behaviour task options")


def recording_weights(groups: np.ndarray, balance: float) -> np.ndarray:
    """Per-window weights ``n_g ** -balance`` (n_g = windows of the window's recording), scaled to mean 1.

    ETH/UCY is dominated by the two dense UCY student recordings (~70% of the windows); ``balance`` 0.5 lets the
    smaller recordings count more without letting a few hundred windows of one recording dominate.
    """
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    weights = counts[inverse].astype(np.float64) ** -balance
    return (weights / weights.mean()).astype(np.float32)


def _windows(
    specs: list[str | DataSpec], observed: int, horizon: int, options: BehaviourOptions, neighbours: int = 0
) -> tuple[BehaviourWindows, np.ndarray, np.ndarray, list[dict]]:
    """Load and join the SPECs' windows -> (windows, trajectory-loss weights, crossing-loss weights, description).

    Weights balance recordings within each SPEC (each SPEC keeps its size); the SPECs after the first (the extra
    data) weigh ``extra_weight`` in the trajectory loss; crossing weights are 0 where there is no label.
    """
    parts = [load_windows(s, observed, horizon, neighbours) for s in specs]
    described = [
        {
            "spec": str(s),
            "source": p.source,
            "windows": len(p),
            "crossing_labelled": int(p.labelled.sum()),
            "crossing_positive": int(p.crossing[p.labelled].sum()),
            "recordings": {
                str(g): int(n) for g, n in zip(*np.unique(p.group, return_counts=True), strict=True)
            },
        }
        for s, p in zip(specs, parts, strict=True)
    ]
    balance = [recording_weights(p.group, options.balance) for p in parts]
    future_w = np.concatenate([b * (1.0 if i == 0 else options.extra_weight) for i, b in enumerate(balance)])
    crossing_w = np.concatenate([b * p.labelled for b, p in zip(balance, parts, strict=True)])
    future_w, crossing_w = future_w.astype(np.float32), crossing_w.astype(np.float32)
    if len(parts) == 1:
        return parts[0], future_w, crossing_w, described
    joined = BehaviourWindows(
        *(
            np.concatenate([getattr(p, f) for p in parts])
            for f in ("obs", "fut", "crossing", "labelled", "group")
        ),
        source=" + ".join(p.source for p in parts),
        neighbours=np.concatenate([p.neighbours for p in parts]) if neighbours else None,
    )
    return joined, future_w, crossing_w, described


def training_arrays(windows: BehaviourWindows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows -> (model input track, future (N, H, 2), crossing (N, 1)) float32; track and future share the
    heading-frame rotation."""
    track, rotation = normalise(windows.obs)
    future = (windows.fut.astype(np.float64) @ rotation).astype(np.float32)
    return track, future, windows.crossing.reshape(-1, 1).astype(np.float32)


def mode_anchors(
    track: np.ndarray, future: np.ndarray, weights: np.ndarray, k: int, seed: int, iterations: int = 30
) -> np.ndarray:
    """K anchor residuals (K, H, 2): weighted k-means of ``future - constant velocity`` over the windows and their
    mirror images (heading frame, so the set is left-right symmetric like the mirrored training data).

    Multi-modal winner-takes-all from random starts leaves modes unused or piled on the common straight walk;
    starting the K residual biases at the centres of the residual distribution gives each mode its own region
    (slower, faster, turning left or right, stopping) from the first step (the idea of MultiPath's anchors).
    """
    steps = np.arange(1, future.shape[1] + 1, dtype=np.float64)[None, :, None]
    velocity = (track[:, -1] - track[:, -2]).astype(np.float64)[:, None, :]
    residual = future.astype(np.float64) - velocity * steps
    mirrored = residual * np.array([1.0, -1.0])
    points = np.concatenate([residual, mirrored]).reshape(2 * len(residual), -1)
    w = np.concatenate([weights, weights]).astype(np.float64)
    rng = np.random.default_rng(seed)
    centres = [points[rng.choice(len(points), p=w / w.sum())]]
    for _ in range(1, k):  # k-means++: the next start far from the chosen ones, in proportion to weight * d^2
        d2 = np.min([((points - c) ** 2).sum(axis=1) for c in centres], axis=0) * w
        centres.append(points[rng.choice(len(points), p=d2 / d2.sum())])
    c = np.stack(centres)
    for _ in range(iterations):
        label = np.argmin(((points[:, None, :] - c[None]) ** 2).sum(axis=-1), axis=1)
        for j in range(k):
            member = label == j
            if w[member].sum() > 0:
                c[j] = np.average(points[member], axis=0, weights=w[member])
    return c.reshape(k, *future.shape[1:]).astype(np.float32)


def neighbour_arrays(windows: BehaviourWindows) -> np.ndarray:
    """Windows with neighbours -> the model input ``neighbours`` (N, M, 5) in each window's heading frame."""
    _, rotation = normalise(windows.obs)
    return neighbour_input(windows.neighbours, rotation)


class BehaviourTask:
    kind = "behaviour"
    default_data = "eth_ucy:scene=all,split=train"
    default_val_data = "eth_ucy:scene=all,split=val"
    options_type = BehaviourOptions

    def datasets(
        self,
        train: DataSpec,
        val: DataSpec,
        config: TrainConfig,
        options: BehaviourOptions,
        model_config: Any,
    ) -> Datasets:
        import tensorflow as tf

        observed, horizon = model_config.observed, model_config.horizon
        m = getattr(model_config, "neighbours", 0)
        k = getattr(model_config, "modes", 1)
        multimodal = k > 1
        train_specs = [train, *([parse_spec(options.extra_data)] if options.extra_data else [])]
        val_specs = [val, *([parse_spec(options.extra_val_data)] if options.extra_val_data else [])]
        train_w, train_fw, train_cw, train_desc = _windows(train_specs, observed, horizon, options, m)
        val_w, val_fw, val_cw, val_desc = _windows(val_specs, observed, horizon, options, m)

        def arrays(w: BehaviourWindows) -> tuple[np.ndarray, ...]:
            t, f, c = training_arrays(w)
            n = neighbour_arrays(w) if m else np.zeros((len(t), 0, 5), np.float32)
            return t, n, f, c

        track, neigh, future, crossing = arrays(train_w)

        def to_keras(t: Any, n: Any, f: Any, c: Any, future_w: Any, crossing_w: Any) -> tuple[Any, Any, Any]:
            # Inputs in the model's order (track, neighbours); the K modes broadcast against
            # a (1, H, 2) target of the same rank.
            x = (t, n) if m else t
            if not multimodal:
                return x, {"future": f, "crossing": c}, {"future": future_w, "crossing": crossing_w}
            # mode_probs has no compiled loss (its cross-entropy needs the modes: see _compile_multimodal);
            # Keras still wants a target of its shape.
            targets = {"future": f[:, None], "mode_probs": tf.zeros([tf.shape(f)[0], k]), "crossing": c}
            weights = {"future": future_w, "mode_probs": tf.ones_like(future_w), "crossing": crossing_w}
            return x, targets, weights

        ds = tf.data.Dataset.from_tensor_slices((track, neigh, future, crossing, train_fw, train_cw))
        ds = ds.shuffle(len(track), seed=config.seed, reshuffle_each_iteration=True).batch(config.batch_size)
        if config.augment and (options.mirror or options.scale > 0):
            # One stateless seed per batch from a seeded stream (new each epoch): same seed -> same augmentation.
            seeds = tf.data.Dataset.random(seed=config.seed, rerandomize_each_iteration=True).batch(2)
            ds = tf.data.Dataset.zip(ds, seeds).map(
                lambda batch, seed: _augment(batch, seed, options), num_parallel_calls=1
            )
        train_ds = ds.map(to_keras).prefetch(2)
        val_ds = tf.data.Dataset.from_tensor_slices((*arrays(val_w), val_fw, val_cw)).batch(config.batch_size)
        val_ds = val_ds.map(to_keras).prefetch(2)
        describe = {
            "train": train_desc,
            "val": val_desc,
            "frame": "heading frame: relative to the last observed "
            "point, rotated so the last step points along +x, points before the last step scaled by "
            f"{OLDER_SCALE} (toolkit.adapters.behaviour.normalise)",
            "augment": {"mirror": options.mirror, "scale": options.scale} if config.augment else None,
            "balance": f"window weight n_recording ** -{options.balance}, mean 1 per SPEC (train and val)",
            "neighbours": f"{m} nearest pedestrians within the radius at the last observed frame"
            if m
            else None,
            "modes": getattr(model_config, "modes", 1),
        }
        initial: dict[str, dict[str, Any]] = {}
        if multimodal and options.anchors:
            anchors = mode_anchors(track, future, train_fw, k, config.seed)
            initial["future_residual"] = {"bias": anchors.reshape(-1)}
            describe["mode_anchors"] = {
                "rule": "weighted k-means (k-means++ start, seed) of the training windows' residuals to constant "
                "velocity, mirrored copies included; the residual head's bias starts at them (metres, heading frame)",
                "final_step_xy": np.round(anchors[:, -1], 3).tolist(),
            }
        return Datasets(train_ds, val_ds, len(track), len(val_w), describe, initial)

    def compile(
        self, model: Any, config: TrainConfig, options: BehaviourOptions, steps_per_epoch: int
    ) -> None:
        import keras

        schedule = keras.optimizers.schedules.CosineDecay(
            config.learning_rate, max(1, config.epochs * steps_per_epoch)
        )
        if "mode_probs" in model.output_names:
            _compile_multimodal(keras, model, schedule, options)
            return
        model.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss={
                "future": _displacement_loss(options.fde_weight),
                "crossing": keras.losses.BinaryCrossentropy(),
            },
            loss_weights={"future": 1.0, "crossing": options.crossing_weight},
            metrics={
                "future": [
                    keras.metrics.MeanMetricWrapper(_ade, name="ade"),
                    keras.metrics.MeanMetricWrapper(_fde, name="fde"),
                ]
            },
            weighted_metrics={
                "crossing": [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]
            },
        )


def _augment(batch: tuple[Any, ...], seed: Any, options: BehaviourOptions) -> tuple[Any, ...]:
    """Mirror across the heading axis (y -> -y) and scale whole windows; both keep the heading frame."""
    import tensorflow as tf

    track, neighbours, future, crossing, future_w, crossing_w = batch
    n = tf.shape(track)[0]
    factor = tf.ones([n, 1, 2])
    if options.mirror:
        flip = tf.random.stateless_uniform([n, 1, 1], seed) < 0.5
        factor *= tf.concat([tf.ones([n, 1, 1]), tf.where(flip, -1.0, 1.0)], axis=-1)
    if options.scale > 0:
        factor *= tf.random.stateless_uniform([n, 1, 1], seed + 1, 1 - options.scale, 1 + options.scale)
    # Neighbours: (dx, dy, vx, vy) take the window's factor, the present flag stays.
    neighbour_factor = tf.concat([factor, factor, tf.ones([n, 1, 1])], axis=-1)
    return track * factor, neighbours * neighbour_factor, future * factor, crossing, future_w, crossing_w


def _distances(y_true: Any, y_pred: Any) -> Any:
    import keras

    # The small constant keeps the gradient of the norm finite at a perfect prediction.
    return keras.ops.sqrt(keras.ops.sum(keras.ops.square(y_true - y_pred), axis=-1) + 1e-9)


def _ade(y_true: Any, y_pred: Any) -> Any:
    import keras

    return keras.ops.mean(_distances(y_true, y_pred), axis=-1)


def _fde(y_true: Any, y_pred: Any) -> Any:
    return _distances(y_true, y_pred)[:, -1]


def _displacement_loss(fde_weight: float) -> Any:
    def displacement(y_true: Any, y_pred: Any) -> Any:
        d = _distances(y_true, y_pred)
        import keras

        return keras.ops.mean(d, axis=-1) + fde_weight * d[:, -1]

    return displacement


def _mode_costs(y_true: Any, y_pred: Any, fde_weight: float) -> Any:
    """(B, 1, H, 2) truth, (B, K, H, 2) modes -> (B, K) ADE + fde_weight * FDE of every mode."""
    import keras

    d = _distances(y_true, y_pred)
    return keras.ops.mean(d, axis=-1) + fde_weight * d[..., -1]


def _winner_takes_all(fde_weight: float, relax: float = 0.0) -> Any:
    """Cost of the closest mode; ``relax`` > 0: (1 - relax) of it plus ``relax`` times the mean of the others
    (relaxed winner-takes-all, Rupprecht et al. 2017: no mode is left without gradient)."""

    def winner_takes_all(y_true: Any, y_pred: Any) -> Any:
        import keras

        costs = _mode_costs(y_true, y_pred, fde_weight)
        best = keras.ops.min(costs, axis=-1)
        if relax <= 0:
            return best
        k = keras.ops.shape(costs)[-1]
        others = (keras.ops.sum(costs, axis=-1) - best) / keras.ops.cast(k - 1, costs.dtype)
        return (1.0 - relax) * best + relax * others

    return winner_takes_all


def _min_ade(y_true: Any, y_pred: Any) -> Any:
    import keras

    return keras.ops.min(keras.ops.mean(_distances(y_true, y_pred), axis=-1), axis=-1)


def _min_fde(y_true: Any, y_pred: Any) -> Any:
    import keras

    return keras.ops.min(_distances(y_true, y_pred)[..., -1], axis=-1)


def _compile_multimodal(keras: Any, model: Any, schedule: Any, options: BehaviourOptions) -> None:
    """Winner-takes-all regression + crossing BCE through compile; the mode cross-entropy is added to the
    compiled loss by wrapping this model's ``compute_loss`` (it needs two outputs and the target at once)."""
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss={
            "future": _winner_takes_all(options.fde_weight, options.relax),
            "crossing": keras.losses.BinaryCrossentropy(),
        },
        loss_weights={"future": 1.0, "crossing": options.crossing_weight},
        metrics={
            "future": [
                keras.metrics.MeanMetricWrapper(_min_ade, name="min_ade"),
                keras.metrics.MeanMetricWrapper(_min_fde, name="min_fde"),
            ]
        },
        weighted_metrics={"crossing": [keras.metrics.AUC(name="auc")]},
    )
    compiled = model.compute_loss

    def compute_loss(
        x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None, training: bool = True
    ) -> Any:
        loss = compiled(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
        if y is None or y_pred is None or (options.mode_weight == 0 and options.top_weight == 0):
            return loss
        ops = keras.ops
        costs = _mode_costs(y["future"], y_pred["future"], options.fde_weight)
        k = ops.shape(costs)[-1]
        best = ops.one_hot(ops.argmin(ops.stop_gradient(costs), axis=-1), k)
        probs = y_pred["mode_probs"]
        ce = -ops.sum(best * ops.log(ops.clip(probs, 1e-7, 1.0)), axis=-1)
        top = ops.one_hot(ops.argmax(ops.stop_gradient(probs), axis=-1), k)
        extra = options.mode_weight * ce + options.top_weight * ops.sum(top * costs, axis=-1)
        if sample_weight is not None and sample_weight.get("future") is not None:
            w = ops.cast(sample_weight["future"], extra.dtype)
            return loss + ops.sum(extra * w) / ops.maximum(ops.sum(w), 1e-9)
        return loss + ops.mean(extra)

    model.compute_loss = compute_loss


TASK = BehaviourTask()
