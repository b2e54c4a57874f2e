"""Person detection stage: camera frame -> letterboxed model input -> detector -> peaks -> NMS -> image boxes.

>>> with Detector(Runner("models/detector/detector_int8.tflite")) as detector:
...     detections = detector(frame_bgr)          # list[Detection], boxes in frame pixels, best first
...     detector.timings                          # {"pre": ms, "infer": ms, "post": ms} of the last call

The frame is letterboxed with the same function training used (:func:`toolkit.adapters.image.letterbox`, grey
114 padding), converted BGR -> RGB and written straight into a preallocated input tensor: float [0, 1] for a
float model, or int8 / uint8 through a 256-entry lookup table for a full-int8 model (no float image at all).
Decoding (3x3 peak search) is :func:`toolkit.adapters.detect.decode`; class-wise NMS is :func:`toolkit.adapters.boxes.nms`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from toolkit.adapters.boxes import nms
from toolkit.adapters.detect import Detection, DetectorConfig, postprocess
from toolkit.adapters.image import ImageInput, Letterbox, check_one_frame
from toolkit.capabilities import MODEL_KINDS
from toolkit.errors import UsageError
from toolkit.runtime.runner import Runner

if TYPE_CHECKING:
    from toolkit.adapters.third_party import AdapterConfig

    # task trains sizes on those cells (box_neighbours = true); a model trained without that needs False


class Detector:
    """The detection stage around a :class:`~toolkit.runtime.runner.Runner` (which it owns and closes).

    ``adapter`` reads a third-party detector (:mod:`toolkit.adapters.third_party`, output ``ssd``)."""

    def __init__(
        self, runner: Runner, config: DetectorConfig = DetectorConfig(), adapter: AdapterConfig | None = None
    ) -> None:
        self.adapter = adapter
        if adapter is not None:
            self._init_adapted(runner, config, adapter)
            return
        kind = MODEL_KINDS["detector"]
        missing = [
            n for n in (*kind.input_names, *kind.output_names) if n not in {**runner.inputs, **runner.outputs}
        ]
        if missing:
            raise UsageError(
                f"{runner.path.name} is not a detector: no tensor '{missing[0]}' (a detector has "
                f"input {', '.join(kind.input_names)} and outputs {', '.join(kind.output_names)})"
            )
        spec = runner.inputs["image"]
        check_one_frame(runner.path.name, spec.shape)
        if len(spec.shape) != 4 or spec.shape[0] != 1 or spec.shape[3] != 3:
            raise UsageError(
                f"{runner.path.name}: input 'image' must be (1, H, W, 3), got {list(spec.shape)}"
            )
        self.runner = runner
        self.config = config
        self._writer = ImageInput(spec)
        self.input_hw = self._writer.input_hw
        self.timings: dict[str, float] = {}  # milliseconds of the last call: pre, infer, post

    def _init_adapted(self, runner: Runner, config: DetectorConfig, adapter: AdapterConfig) -> None:
        from toolkit.adapters.third_party import pixel_levels, ssd_outputs

        if len(runner.inputs) != 1:
            raise UsageError(
                f"{runner.path.name}: a detector takes one image input, it has {len(runner.inputs)}"
            )
        self._input_name, spec = next(iter(runner.inputs.items()))
        check_one_frame(runner.path.name, spec.shape)
        if len(spec.shape) != 4 or spec.shape[0] != 1 or spec.shape[3] != 3:
            raise UsageError(f"{runner.path.name}: the input must be (1, H, W, 3), got {list(spec.shape)}")
        self._roles = ssd_outputs(
            list(runner.outputs), {n: tuple(s.shape) for n, s in runner.outputs.items()}, runner.path.name
        )
        lookup = adapter.lookup(("person",), unmapped=-1)
        self._keep = lookup
        self.runner, self.config = runner, config
        self._writer = ImageInput(spec, pixel_levels(adapter.input))
        self.input_hw = self._writer.input_hw
        self.timings = {}

    def _adapted(self, transform: Letterbox) -> list[Detection]:
        from toolkit.adapters.third_party import detections_from_ssd

        roles, adapter = self._roles, self.adapter
        assert adapter is not None
        out = {
            n: self.runner.get_output(n)[0] if n != roles.count else self.runner.get_output(n)
            for n in (roles.boxes, roles.classes, roles.scores, roles.count)
        }
        boxes, scores, _ = detections_from_ssd(
            out[roles.boxes],
            out[roles.classes],
            out[roles.scores],
            out[roles.count],
            self._keep,
            adapter.score_threshold,
            transform,
            self.input_hw,
        )
        if len(boxes) == 0:
            return []
        keep = nms(boxes, scores, self.config.iou_threshold)
        wide = (boxes[keep, 2] - boxes[keep, 0] >= self.config.min_box_px) & (
            boxes[keep, 3] - boxes[keep, 1] >= self.config.min_box_px
        )
        return [
            Detection(tuple(float(v) for v in boxes[i]), float(scores[i]), self.config.label)
            for i in keep[wide]
        ]

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
        """Close the runner (the interpreter and its delegate)."""
        self.runner.close()

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
