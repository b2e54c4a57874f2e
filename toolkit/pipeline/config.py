"""Defaults of the camera demo (``toolkit demo``) in one frozen dataclass; flags and config files override them.

A config file (``toolkit demo --config demo.toml``) holds the same keys, e.g.::

    source = "/dev/video0"
    every_n_seg = 4
    record = "street.mp4"
    serve = "0.0.0.0:8080"

Unknown keys are rejected with a "did you mean" (:func:`toolkit.config.apply_overrides`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from toolkit.errors import UsageError

BEHAVIOUR_MODES = ("model", "constant_velocity")


@dataclass(frozen=True)
class PipelineConfig:
    source: str | None = None  # source spec (file, camera index, URL, picamera2, synthetic); None = synthetic scene
    models: str | None = None  # folder with detector / behaviour / segmenter .tflite files; None = the shipped zoo
    detector: str | None = None  # a detector .tflite file instead of the folder's (ours, or any with an adapter)
    segmenter: str | None = None  # a segmenter .tflite file instead of the folder's
    detector_adapter: str | None = None  # TOML reading a third-party detector (toolkit.pipeline.adapters)
    segmenter_adapter: str | None = None  # TOML reading a third-party segmenter and mapping its labels to ours
    homography: str | None = None  # image->ground JSON; None = the synthetic scene's own camera, else pixel space
    threads: int | None = None  # interpreter threads per model; None = half the cores when pipelined, else all
    delegate: str = "xnnpack"  # xnnpack | none | edgetpu (takes *_edgetpu.tflite models first) | a delegate .so
    fallback: Literal["cpu"] | None = None  # "cpu": run on the CPU when the delegate is missing instead of exit 3
    every_n_seg: int = 3  # run the segmenter on every N-th frame (its mask is reused in between); 0 = never
    behaviour: Literal["model", "constant_velocity"] = "model"  # constant_velocity: the baseline, no model file
    max_frames: int | None = None  # stop after this many processed frames; None = until the source ends
    loop: bool = False  # files: start again at the end instead of stopping
    realtime: bool = True  # pace files / synthetic at their native rate; False: as fast as the pipeline runs
    record: str | None = None  # write the annotated video here (.mp4 = mp4v, .avi = MJPG), atomically
    record_fps: float | None = None  # frame rate written into the recording; None = the source's own rate
    events: str | None = None  # write one JSON line per frame here (schema in toolkit.pipeline.events)
    serve: str | None = None  # HOST:PORT of the live web view (MJPEG stream + status); None = no server
    window: bool = False  # show an OpenCV window (needs a display and an OpenCV build with GUI support)
    pipelined: bool = True  # segment/draw/write frame k in a worker thread while frame k+1 is detected
    queue_depth: int = 2  # frames in flight between the inference thread and the output worker
    validate_events: bool = False  # check every event against the schema before writing (tests; costs ~0.2 ms)
    oracle_detections: bool = False  # synthetic source only: track the scene's true person boxes (the detector
    # still runs and is timed); isolates tracking/behaviour from detector errors, and benchmarks them at real crowd sizes
    stats_window: int = 8192  # per-stage timings kept for percentiles (a fixed ring: no growth on long runs)

    def __post_init__(self) -> None:
        checks = [
            (self.threads is None or self.threads >= 1, "threads must be >= 1"),
            (self.every_n_seg >= 0, "every_n_seg must be >= 0 (0 = no segmentation)"),
            (self.fallback in (None, "cpu"), "fallback must be \"cpu\" or unset"),
            (self.behaviour in BEHAVIOUR_MODES, f"behaviour must be one of {', '.join(BEHAVIOUR_MODES)}"),
            (self.max_frames is None or self.max_frames >= 1, "max_frames must be >= 1"),
            (self.record_fps is None or self.record_fps > 0, "record_fps must be > 0"),
            (self.queue_depth >= 1, "queue_depth must be >= 1"),
            (self.stats_window >= 16, "stats_window must be >= 16"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(f"demo config: {message}")


def parse_address(text: str) -> tuple[str, int]:
    """``"HOST:PORT"`` / ``":PORT"`` / ``"PORT"`` -> (host, port); host defaults to 127.0.0.1, port 0 = any free."""
    value = text.strip()
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = "", value
    host = host.strip("[]") or "127.0.0.1"  # [::1]:8080 -> ::1
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise UsageError(f"--serve {text!r}: expected HOST:PORT with a port 0-65535, e.g. 0.0.0.0:8080")
    return host, port
