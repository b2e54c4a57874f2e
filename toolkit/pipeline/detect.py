"""Person detection stage: camera frame -> letterboxed model input -> detector -> peaks -> NMS -> image boxes.

>>> with Detector(Runner("models/detector/detector_int8.tflite")) as detector:
...     detections = detector(frame_bgr)          # list[Detection], boxes in frame pixels, best first
...     detector.timings                          # {"pre": ms, "infer": ms, "post": ms} of the last call

The frame is letterboxed with the same function training used (:func:`toolkit.data.augment.letterbox`, grey
114 padding), converted BGR -> RGB and written straight into a preallocated input tensor: float [0, 1] for a
float model, or int8 / uint8 through a 256-entry lookup table for a full-int8 model (no float image at all).
Decoding (3x3 peak search) is :func:`toolkit.models.detector_targets.decode`; class-wise NMS is :func:`nms`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from toolkit.capabilities import MODEL_KINDS
from toolkit.data.augment import DEFAULT as AUGMENT_DEFAULT
from toolkit.data.augment import Letterbox, letterbox, letterbox_layout, resize_image
from toolkit.errors import UsageError
from toolkit.models.detector_targets import decode
from toolkit.pipeline.geometry import box_area, iou_matrix
from toolkit.runtime.runner import Runner, TensorSpec

if TYPE_CHECKING:
    from toolkit.pipeline.adapters import AdapterConfig


@dataclass(frozen=True)
class Detection:
    """One detected object: ``box`` = (x1, y1, x2, y2) in frame pixels, ``score`` in [0, 1], ``label``."""

    box: tuple[float, float, float, float]
    score: float
    label: str = "person"


@dataclass(frozen=True)
class DetectorConfig:
    score_threshold: float = 0.1  # keep peaks above this; low scores feed the tracker's second stage
    iou_threshold: float = 0.5  # NMS: a box overlapping a better one of its class by more than this is dropped
    max_detections: int = 50  # at most this many peaks are decoded per frame
    min_box_px: float = 2.0  # boxes narrower or shorter than this (after mapping to the frame) are dropped
    label: str = "person"  # the detector's single class
    neighbour_sizes: bool = True  # box size = heatmap-weighted mean over the peak's 3x3 cells (decode); the detector
    # task trains sizes on those cells (box_neighbours = true); a model trained without that needs False


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression.

    Takes (n, 4) xyxy boxes and (n,) scores. Returns the kept indices, best score first: a box is dropped when
    its IoU with an already kept box is > ``iou_threshold``. Ties in score keep the earlier box.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(b) != len(s):
        raise ValueError(f"nms: {len(b)} boxes but {len(s)} scores")
    order = np.argsort(-s, kind="stable")
    overlaps = iou_matrix(b[order], b[order]) > iou_threshold  # one (n, n) matrix: n is at most max_detections
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(order[i])
            suppressed |= overlaps[i]  # later boxes overlapping a kept one go; earlier ones are already decided
    return np.asarray(keep, dtype=np.intp)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Class-wise NMS: boxes only suppress boxes of the same label. Returns kept indices, best score first."""
    lab = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    keep = [np.flatnonzero(lab == value)[nms(np.asarray(boxes)[lab == value], s[lab == value], iou_threshold)]
            for value in np.unique(lab)]
    merged = np.concatenate(keep) if keep else np.zeros(0, np.intp)
    return merged[np.argsort(-s[merged], kind="stable")]


def preprocess(frame_bgr: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """A uint8 BGR frame -> (float32 RGB (H, W, 3) in [0, 1], the letterbox transform). Reference version of
    what :class:`Detector` does in place."""
    _check_frame(frame_bgr)
    boxed, transform = letterbox(frame_bgr, input_hw)
    rgb = cv2.cvtColor(boxed, cv2.COLOR_BGR2RGB)
    return rgb.astype(np.float32) * np.float32(1 / 255.0), transform


def postprocess(
    heatmap: np.ndarray, box: np.ndarray, transform: Letterbox, input_hw: tuple[int, int],
    config: DetectorConfig = DetectorConfig(),
) -> list[Detection]:
    """Model outputs for one image (heatmap (h, w, 1), box (h, w, 4)) -> detections in frame pixels, best first."""
    boxes, scores = decode(heatmap, box, input_hw, config.score_threshold, config.max_detections,
                           config.neighbour_sizes)
    if len(boxes) == 0:
        return []
    keep = nms(boxes, scores, config.iou_threshold)  # one class: class-wise NMS is plain NMS
    frame_boxes = transform.to_image(boxes[keep])  # undo the letterbox, clip to the frame
    widths = frame_boxes[:, 2] - frame_boxes[:, 0]
    heights = frame_boxes[:, 3] - frame_boxes[:, 1]
    ok = (widths >= config.min_box_px) & (heights >= config.min_box_px) & (box_area(frame_boxes) > 0)
    return [Detection(tuple(float(v) for v in frame_boxes[i]), float(scores[keep][i]), config.label)
            for i in np.flatnonzero(ok)]


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise UsageError(f"expected a uint8 BGR frame of shape (H, W, 3), got {got}")


PAD_VALUE = AUGMENT_DEFAULT.pad_value  # letterbox padding, as in training (grey 114)
_CV_LUT_DTYPES = tuple(np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32, np.float64))


class ImageInput:
    """Writes letterboxed RGB frames into one preallocated (1, H, W, 3) tensor of the model's input dtype.

    ``write(frame_bgr)`` fills ``buffer`` and returns the letterbox transform; shared by detector and segmenter.
    The result equals :func:`toolkit.data.augment.letterbox` + BGR->RGB + quantization (the training path), but
    nothing is allocated per frame: the frame is resized (only if it does not fit at scale 1) and colour-converted
    into a padded uint8 canvas kept between frames, and one lookup table maps that canvas into the tensor.
    """

    def __init__(self, spec: TensorSpec, value_range: tuple[float, float] | None = (0.0, 1.0)) -> None:
        """``value_range``: the real values pixels 0 and 255 stand for (ours: [0, 1]); None writes the uint8
        pixel as it is (third-party uint8 models that take raw pixels; int8 ones get pixel - 128)."""
        self.spec = spec
        self.buffer = np.zeros(spec.shape, dtype=spec.dtype)
        self.input_hw = (int(spec.shape[1]), int(spec.shape[2]))
        # uint8 pixel value -> model input value; for int8 models this is the whole quantization step.
        pixels = np.arange(256, dtype=np.float32)
        if value_range is None:
            self.lut = (pixels - 128 if np.dtype(spec.dtype) == np.int8 else pixels).astype(spec.dtype)
        else:
            low, high = value_range
            levels = np.float32(low) + pixels * np.float32((high - low) / 255.0)
            self.lut = spec.quantize(levels) if spec.quantized else levels.astype(spec.dtype)
        self._canvas = np.empty((*self.input_hw, 3), np.uint8)
        self._layout: tuple[tuple[int, int], Letterbox, tuple[int, int]] | None = None

    def write(self, frame_bgr: np.ndarray) -> Letterbox:
        """A uint8 BGR frame (any size) -> the letterbox transform; the model input is in ``buffer``."""
        _check_frame(frame_bgr)
        frame_hw = frame_bgr.shape[:2]
        if self._layout is None or self._layout[0] != frame_hw:  # a new frame size: lay the canvas out again
            transform, resized_hw = letterbox_layout(frame_hw, self.input_hw)
            self._canvas[:] = PAD_VALUE
            self._layout = (frame_hw, transform, resized_hw)
        _, transform, (nh, nw) = self._layout
        region = self._canvas[transform.pad_y:transform.pad_y + nh, transform.pad_x:transform.pad_x + nw]
        source = frame_bgr if (nh, nw) == frame_hw else resize_image(frame_bgr, (nh, nw))
        if region.flags.c_contiguous:  # full-width region (the usual camera case): convert straight into it
            cv2.cvtColor(source, cv2.COLOR_BGR2RGB, dst=region)
        else:
            region[:] = cv2.cvtColor(source, cv2.COLOR_BGR2RGB)
        if self.lut.dtype in _CV_LUT_DTYPES:
            cv2.LUT(self._canvas, self.lut, dst=self.buffer[0])  # 4x faster than np.take
        else:
            np.take(self.lut, self._canvas, out=self.buffer[0])
        return transform


class Detector:
    """The detection stage around a :class:`~toolkit.runtime.runner.Runner` (which it owns and closes).

    ``adapter`` reads a third-party detector (:mod:`toolkit.pipeline.adapters`, output ``ssd``)."""

    def __init__(self, runner: Runner, config: DetectorConfig = DetectorConfig(),
                 adapter: AdapterConfig | None = None) -> None:
        self.adapter = adapter
        if adapter is not None:
            self._init_adapted(runner, config, adapter)
            return
        kind = MODEL_KINDS["detector"]
        missing = [n for n in (*kind.input_names, *kind.output_names) if n not in {**runner.inputs, **runner.outputs}]
        if missing:
            raise UsageError(f"{runner.path.name} is not a detector: no tensor '{missing[0]}' (a detector has "
                             f"input {', '.join(kind.input_names)} and outputs {', '.join(kind.output_names)})")
        spec = runner.inputs["image"]
        if len(spec.shape) != 4 or spec.shape[0] != 1 or spec.shape[3] != 3:
            raise UsageError(f"{runner.path.name}: input 'image' must be (1, H, W, 3), got {list(spec.shape)}")
        self.runner = runner
        self.config = config
        self._writer = ImageInput(spec)
        self.input_hw = self._writer.input_hw
        self.timings: dict[str, float] = {}  # milliseconds of the last call: pre, infer, post

    def _init_adapted(self, runner: Runner, config: DetectorConfig, adapter: AdapterConfig) -> None:
        from toolkit.pipeline.adapters import pixel_levels, ssd_outputs

        if len(runner.inputs) != 1:
            raise UsageError(f"{runner.path.name}: a detector takes one image input, it has {len(runner.inputs)}")
        self._input_name, spec = next(iter(runner.inputs.items()))
        if len(spec.shape) != 4 or spec.shape[0] != 1 or spec.shape[3] != 3:
            raise UsageError(f"{runner.path.name}: the input must be (1, H, W, 3), got {list(spec.shape)}")
        self._roles = ssd_outputs(list(runner.outputs), {n: tuple(s.shape) for n, s in runner.outputs.items()},
                                  runner.path.name)
        lookup = adapter.lookup(("person",), unmapped=-1)
        self._keep = lookup
        self.runner, self.config = runner, config
        self._writer = ImageInput(spec, pixel_levels(adapter.input))
        self.input_hw = self._writer.input_hw
        self.timings = {}

    def _adapted(self, transform: Letterbox) -> list[Detection]:
        from toolkit.pipeline.adapters import detections_from_ssd

        roles, adapter = self._roles, self.adapter
        assert adapter is not None
        out = {n: self.runner.get_output(n)[0] if n != roles.count else self.runner.get_output(n)
               for n in (roles.boxes, roles.classes, roles.scores, roles.count)}
        boxes, scores, _ = detections_from_ssd(out[roles.boxes], out[roles.classes], out[roles.scores],
                                               out[roles.count], self._keep, adapter.score_threshold, transform,
                                               self.input_hw)
        if len(boxes) == 0:
            return []
        keep = nms(boxes, scores, self.config.iou_threshold)
        wide = (boxes[keep, 2] - boxes[keep, 0] >= self.config.min_box_px) & \
            (boxes[keep, 3] - boxes[keep, 1] >= self.config.min_box_px)
        return [Detection(tuple(float(v) for v in boxes[i]), float(scores[i]), self.config.label)
                for i in keep[wide]]

    def __call__(self, frame_bgr: np.ndarray) -> list[Detection]:
        """A uint8 BGR frame (H, W, 3) -> detections in frame pixels, best score first."""
        t0 = time.perf_counter()
        transform = self._writer.write(frame_bgr)
        t1 = time.perf_counter()
        if self.adapter is not None:
            self.runner.set_inputs({self._input_name: self._writer.buffer})
            self.runner.invoke()
            t2 = time.perf_counter()
            detections = self._adapted(transform)
            t3 = time.perf_counter()
            self.timings = {"pre": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3, "post": (t3 - t2) * 1e3}
            return detections
        raw = self.runner.run_raw({"image": self._writer.buffer})
        t2 = time.perf_counter()
        heatmap = self.runner.outputs["heatmap"].dequantize(raw["heatmap"])[0]
        box = self.runner.outputs["box"].dequantize(raw["box"])[0]
        detections = postprocess(heatmap, box, transform, self.input_hw, self.config)
        t3 = time.perf_counter()
        self.timings = {"pre": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3, "post": (t3 - t2) * 1e3}
        return detections

    def close(self) -> None:
        self.runner.close()

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
