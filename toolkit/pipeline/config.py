"""Defaults of the camera demo (``toolkit demo``) in one frozen dataclass; flags and config files override them.

A config file (``toolkit demo --config demo.toml``) holds the same keys, e.g.::

    source = "/dev/video0"
    every_n_seg = 4
    record = "street.mp4"
    serve = "0.0.0.0:8080"

Unknown keys are rejected with a "did you mean" (:func:`toolkit.config.apply_overrides`).
"""

from __future__ import annotations

import ipaddress
import string
from dataclasses import dataclass
from typing import ClassVar, Literal

from toolkit.config import THREADS_RANGE, Limits, check_ranges
from toolkit.errors import UsageError

BEHAVIOUR_MODES = ("model", "constant_velocity")
CROSSING_MODES = (
    "road",
    "road_only",
    "model",
)  # where a track's crossing probability comes from (toolkit.pipeline.crossing)
# Frame rates a recording can have: cv2.VideoWriter fails to open an .mp4 below 0.01 and spins forever (writing
# nothing) at an infinite rate (issue 15); no camera this runs on delivers more than 240.
RECORD_FPS_RANGE = (0.01, 240.0)
_HOST_CHARS = frozenset(string.ascii_letters + string.digits + ".-_")  # --serve host names


@dataclass(frozen=True)
class PipelineConfig:
    """Every setting of one demo run (source, models, stages, outputs); the CLI builds it, run_demo reads it."""

    source: str | None = (
        None  # source spec (file, camera index, URL, picamera2, synthetic); None = synthetic scene
    )
    models: str | None = (
        None  # folder with detector / behaviour / segmenter .tflite files; None = the shipped zoo
    )
    detector: str | None = (
        None  # a detector .tflite file instead of the folder's (ours, or any with an adapter)
    )
    segmenter: str | None = None  # a segmenter .tflite file instead of the folder's
    detector_adapter: str | None = None  # TOML reading a third-party detector (toolkit.adapters.third_party)
    segmenter_adapter: str | None = (
        None  # TOML reading a third-party segmenter and mapping its labels to ours
    )
    homography: str | None = (
        None  # image->ground JSON; "auto" = estimated from people, saved per source; None = synthetic's own
    )
    threads: int | None = (
        None  # interpreter threads per model; None = half the cores when pipelined, else all
    )
    delegate: str = (
        "xnnpack"  # xnnpack | none | edgetpu (takes *_edgetpu.tflite models first) | a delegate .so
    )
    fallback: Literal["cpu"] | None = (
        None  # "cpu": run on the CPU when the delegate is missing instead of exit 3
    )
    every_n_seg: int = 3  # run the segmenter on every N-th frame (its mask is reused in between); 0 = never
    behaviour: Literal["model", "constant_velocity"] = (
        "model"  # constant_velocity: the baseline, no model file
    )
    crossing: Literal["road", "road_only", "model"] = "road"  # road: the chance the predicted paths enter the
    # road region, half-blended with the learned head where there is road (0 where there is none); road_only: no
    # blend; model: the learned head alone (toolkit.pipeline.crossing)
    road_region: str | None = (
        None  # road polygon(s) in pixels, JSON file or inline; overrides the segmenter's road
    )
    max_frames: int | None = None  # stop after this many processed frames; None = until the source ends
    loop: bool = False  # files: start again at the end instead of stopping
    realtime: bool = True  # pace files / synthetic at their native rate; False: as fast as the pipeline runs
    record: str | None = None  # write the annotated video here, atomically: .webm = VP8 (plays in browsers),
    # .mp4 = mp4v (~20x cheaper to encode; desktop players only), .avi = MJPG (outputs.RECORD_FORMATS)
    record_fps: float | None = None  # frame rate written into the recording; None = the source's own rate
    events: str | None = None  # write one JSON line per frame here (schema in toolkit.pipeline.events)
    serve: str | None = None  # HOST:PORT of the live web view (MJPEG stream + status); None = no server
    window: bool = False  # show an OpenCV window (needs a display and an OpenCV build with GUI support)
    pipelined: bool = True  # segment/draw/write frame k in a worker thread while frame k+1 is detected
    queue_depth: int = 2  # frames in flight between the inference thread and the output worker
    validate_events: bool = (
        False  # check every event against the schema before writing (tests; costs ~0.2 ms)
    )
    oracle_detections: bool = (
        False  # synthetic source only: track the scene's true person boxes (the detector
    )
    # still runs and is timed); isolates tracking/behaviour from detector errors, and benchmarks them at real crowd sizes
    stats_window: int = 8192  # per-stage timings kept for percentiles (a fixed ring: no growth on long runs)

    LIMITS: ClassVar[Limits] = {  # valid values of numeric keys (flags and config files)
        "threads": THREADS_RANGE,
        "every_n_seg": (0, 100_000),
        "max_frames": (1, 10**12),
        "queue_depth": (1, 64),
        "stats_window": (16, 1_000_000),  # a ring of floats per stage: 10**13 was a MemoryError (issue 15)
        "record_fps": RECORD_FPS_RANGE,
    }

    def __post_init__(self) -> None:
        check_ranges(self, "demo config")
        checks = [
            (self.fallback in (None, "cpu"), 'fallback must be "cpu" or unset'),
            (self.behaviour in BEHAVIOUR_MODES, f"behaviour must be one of {', '.join(BEHAVIOUR_MODES)}"),
            (self.crossing in CROSSING_MODES, f"crossing must be one of {', '.join(CROSSING_MODES)}"),
            (
                not (self.road_region and self.crossing == "model"),
                'road_region needs crossing = "road" or "road_only" (the learned head alone does not read it)',
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(f"demo config: {message}")


def record_fps_ok(fps: float) -> bool:
    """True for a frame rate a recording can have (:data:`RECORD_FPS_RANGE`; NaN and infinity are not)."""
    return RECORD_FPS_RANGE[0] <= fps <= RECORD_FPS_RANGE[1]


def check_record_fps(fps: float, what: str = "record_fps") -> float:
    """``fps`` when :func:`record_fps_ok`, else a UsageError naming ``what`` and the valid range."""
    if not record_fps_ok(fps):
        low, high = RECORD_FPS_RANGE
        raise UsageError(
            f"{what} must be a number in {low:g}..{high:g} frames per second, got {fps:g}; "
            "pass --record-fps F"
        )
    return fps


def parse_address(text: str) -> tuple[str, int]:
    """``"HOST:PORT"`` / ``"[IPV6]:PORT"`` / ``":PORT"`` / ``"PORT"`` -> (host, port); malformed: UsageError.

    The host defaults to 127.0.0.1 and port 0 picks any free port. IPv6 literals go in brackets: ``[::1]:8080``,
    ``[::]:8080`` (every address, IPv4 too where the system allows); a bare ``::1`` is refused, since its last
    group cannot be told from a port. A host name is listened on by its IPv4 address.
    """
    value = text.strip()
    usage = f"--serve {text!r}: expected HOST:PORT with a port 0-65535, e.g. 0.0.0.0:8080 or [::1]:8080"
    if value.startswith("["):
        host, sep, port_text = value[1:].partition("]:")
        if not sep:
            raise UsageError(usage)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UsageError(
                f"--serve {text!r}: [{host}] is not an IPv6 address; brackets are for IPv6 only "
                "(e.g. [::1]:8080), IPv4 addresses and host names go without them"
            ) from None
    elif value.count(":") > 1 or "]" in value:
        raise UsageError(
            f"--serve {text!r}: write an IPv6 address in brackets with a port, e.g. [::1]:8080 or [::]:8080"
        )
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            host, port_text = "", value
        if not set(host) <= _HOST_CHARS:
            raise UsageError(
                f"--serve {text!r}: {host!r} is not a host name or IPv4 address (letters, digits, "
                "'.', '-'), e.g. 0.0.0.0:8080"
            )
        host = host or "127.0.0.1"
    if not (port_text.isascii() and port_text.isdigit() and int(port_text) <= 65535):
        raise UsageError(usage)
    return host, int(port_text)
