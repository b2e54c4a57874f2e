"""Start a model from pretrained convolutions: copy them from a Keras model, e.g. one made by ``toolkit import``.

>>> loaded = load_pretrained_backbone(model, "mobilenet_v2_imagenet.keras")   # before training

The source is any ``.keras`` model whose convolutions come in the same order and shapes as the target's backbone
layers (``toolkit.models.mobilenet_v2.conv_layers``) and that takes the same input, [0, 1] RGB:
``toolkit import mobilenet_v2_1.0_224_quant.tflite --input-range unit -o mnv2.keras`` rebuilds Coral's ImageNet
MobileNetV2 that way (its batch norms already folded into conv biases, a ``Rescaling`` layer in front mapping
[0, 1] to the graph's own input range). A truncated backbone takes the first convolutions; the source's
``Rescaling`` is folded into the first one, so the target sees the features the pretrained network computed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toolkit.errors import UsageError

CONV_TYPES = ("Conv2D", "DepthwiseConv2D")


def source_convolutions(source: Any) -> tuple[list[Any], tuple[float, float]]:
    """The source model's convolution layers in order, and the ``(scale, offset)`` its input goes through
    before the first one (a Rescaling layer; ``(1, 0)`` without one)."""
    convs, scale, offset = [], 1.0, 0.0
    for layer in source.layers:
        kind = type(layer).__name__
        if kind == "Rescaling" and not convs:
            scale = float(layer.scale) * scale
            offset = float(layer.offset) + float(layer.scale) * offset
        elif kind in CONV_TYPES:
            convs.append(layer)
    return convs, (scale, offset)


def load_pretrained_backbone(model: Any, source_path: str | Path, prefix: str = "mnv2_") -> int:
    """Copy the convolutions of the ``.keras`` model at ``source_path`` into ``model``'s ``prefix*`` layers.

    Returns the number of layers loaded. UsageError when the file is missing, is not a Keras model, was imported
    for another input range (its ``toolkit import`` sidecar says so), or a shape differs (another architecture
    or width) -- the message names the first mismatching layer.
    """
    import keras

    from toolkit.models import register_custom_objects
    from toolkit.models.mobilenet_v2 import conv_layers, fold_input_scaling

    path = Path(source_path).expanduser()
    if not path.is_file() or path.suffix != ".keras":
        raise UsageError(
            f"pretrained weights {path}: expected an existing .keras file (make one with "
            "'toolkit import MODEL.tflite --input-range unit -o MODEL.keras')"
        )
    _check_input_range(path)
    register_custom_objects()
    try:
        source = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # a damaged or foreign file: say which, not a traceback
        raise UsageError(f"pretrained weights {path}: cannot load ({type(exc).__name__}: {exc})") from None
    convs, (scale, offset) = source_convolutions(source)
    targets = conv_layers(model, prefix)
    if not targets:
        raise UsageError(
            f"the model has no '{prefix}*' convolution layers to load pretrained weights into "
            "(build it with backbone = 'mobilenet_v2')"
        )
    if len(convs) < len(targets):
        raise UsageError(
            f"pretrained weights {path}: {len(convs)} convolutions, the backbone needs {len(targets)}"
        )
    new_weights = []  # checked first, written after: a mismatch leaves the model untouched
    for index, (target, conv) in enumerate(zip(targets, convs, strict=False)):
        weights = conv.get_weights()
        if len(weights) != 2:
            raise UsageError(
                f"pretrained weights {path}: layer {conv.name} has no bias (expected folded batch norm)"
            )
        kernel, bias = weights
        if index == 0:
            kernel, bias = fold_input_scaling(kernel, bias, scale, offset)
        expected = [tuple(w.shape) for w in target.get_weights()]
        if expected != [tuple(kernel.shape), tuple(bias.shape)]:
            raise UsageError(
                f"pretrained weights {path}: {conv.name} has kernel {tuple(kernel.shape)}, "
                f"{target.name} expects {expected[0]} (not the same architecture or width)"
            )
        new_weights.append([kernel, bias])
    for target, weights in zip(targets, new_weights, strict=True):
        target.set_weights(weights)
    return len(targets)


def start_backbone(model: Any, source_path: str | Path, freeze: bool = False, prefix: str = "mnv2_") -> int:
    """A task's ``pretrained`` / ``freeze_backbone`` options: load the backbone (:func:`load_pretrained_backbone`),
    and with ``freeze`` make its layers non-trainable (call before ``compile``): the head learns on the
    pretrained features as they are. With few real labels (100 COCO128 photos) frozen ImageNet features transfer
    to held-out photos far better than features fine-tuned on those photos. Returns the layers loaded."""
    loaded = load_pretrained_backbone(model, source_path, prefix)
    if freeze:
        for layer in model.layers:
            if layer.name.startswith(prefix):
                layer.trainable = False
    return loaded


def _check_input_range(path: Path) -> None:
    """A source imported for 0-255 pixels or the graph's raw range would start the backbone on other values."""
    import json

    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        return
    try:
        convention = json.loads(sidecar.read_text()).get("input_convention", {})
    except (OSError, ValueError, AttributeError):
        return
    got = convention.get("range") if isinstance(convention, dict) else None
    if got not in (None, "unit"):
        raise UsageError(
            f"pretrained weights {path}: imported for input range '{got}', the model takes [0, 1] "
            "images; import it again with 'toolkit import MODEL.tflite --input-range unit -o ...'"
        )
