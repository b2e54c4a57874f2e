"""Defaults for ``toolkit convert`` in one typed place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from toolkit.config import SEED_RANGE, THREADS_RANGE, Limits, check_ranges

QuantizeMode = Literal["fp32", "fp16", "dynamic", "int8"]
IoType = Literal["int8", "uint8", "float32"]
ResizeMode = Literal["auto", "stretch", "letterbox"]
Target = Literal["cpu", "edgetpu"]
Backend = Literal["tflite", "aeq"]
MAX_BATCH = (
    1024  # largest --batch: a fixed batch is for batching a frame's tracks, not for offline throughput
)


@dataclass(frozen=True)
class ConvertConfig:
    """Options of one ``toolkit convert`` run (numeric keys are range-checked on construction)."""

    quantize: QuantizeMode = "int8"  # fp32 | fp16 | dynamic | int8 (full integer; needs calibration data)
    io: IoType = "int8"  # input/output tensor type of a full-int8 model; float32 keeps (de)quantize inside
    calib: str | None = None  # folder of images or a .npy/.npz of model inputs; required for int8
    calib_samples: int = (
        200  # at most this many samples calibrate the int8 ranges (100-500 is the usual advice)
    )
    parity_samples: int = 16  # samples held back from calibration to measure Keras-vs-TFLite error
    calib_resize: ResizeMode = (
        "auto"  # how calibration images are fitted: auto = as the device feeds this kind
    )
    # (letterbox for detectors and segmenters, as the camera pipeline; stretch for classifiers, as their eval)
    part: str | None = None  # convert a named sub-model (e.g. a VAE's "encoder" or "decoder")
    trust_model: bool = (
        False  # allow SavedModel directories and unsafe .keras deserialization (Lambda layers)
    )
    seed: int = (
        0  # shuffles calibration files before sampling; fixes random parity inputs when there is no data
    )
    threads: int = 0  # interpreter threads for the parity check; 0 = all cores
    keep_float: tuple[
        str, ...
    ] = ()  # int8 only: layers matching these regexes stay float (selective quantization)
    backend: Backend = "tflite"  # int8 by the classic TFLite converter, or by ai-edge-quantizer (static int8)
    task: str | None = (
        None  # a model of no toolkit kind declared as this kind (calibration preprocessing, gate)
    )
    target: Target = (
        "cpu"  # edgetpu: full int8 + the offline Edge TPU report, and edgetpu_compiler when on PATH
    )
    batch: int = (
        1  # fixed batch of every input and output (one invoke runs this many samples; rows are padded)
    )

    LIMITS: ClassVar[Limits] = {  # valid values of numeric keys (flags and recipe [convert] tables)
        "calib_samples": (1, 1_000_000),
        "parity_samples": (0, 100_000),
        "seed": SEED_RANGE,
        "threads": (0, THREADS_RANGE[1]),  # 0 = all cores
        "batch": (1, MAX_BATCH),
    }

    def __post_init__(self) -> None:
        check_ranges(self, "convert config")
