"""The camera demo: capture -> detect -> track -> behaviour -> segment (every N) -> draw -> outputs.

>>> summary = run_demo(PipelineConfig(source="clip.avi", record="out.mp4", max_frames=300))
>>> summary.fps, summary.stages["detect"]["p50"], summary.efficiency  # a DemoSummary (toolkit.pipeline.demo_summary)

Threads: the source captures in its own thread and hands over only the newest frame (frames that arrive while
the pipeline is busy are dropped and counted there, never queued). The calling thread letterboxes and detects;
a tracking stage (:mod:`toolkit.pipeline.track_stage`) runs the tracker and the behaviour model; an output stage
(:mod:`toolkit.pipeline.outputs`) segments every N-th frame, draws and writes. So frame k is drawn while frame
k+1 is tracked and frame k+2 detected. The interpreters release the GIL while they run, as do OpenCV's resize,
drawing and encoding calls, so the stages overlap on a 2-core board. ``pipelined=False`` runs the same stages
one after another in the calling thread (the baseline).

``model_bound_fps`` = 1000 / (detector p50 + behaviour-model p50 per frame + segmenter p50 / N) is what the
models alone would allow run one after another; ``efficiency`` = achieved FPS / model_bound_fps, from the same
run. Above 1 means the overlap hides more than the non-model work costs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from toolkit.errors import DeviceUnavailable, ToolkitError, UsageError
from toolkit.fileio import check_writable
from toolkit.pipeline.config import PipelineConfig, check_record_fps, parse_address
from toolkit.pipeline.demo_summary import DemoProgress, DemoSummary, format_summary, run_figures
from toolkit.pipeline.demo_summary import cpu_estimate as _cpu_estimate
from toolkit.pipeline.outputs import (
    FOURCC,
    FramePacket,
    OutputWorker,
    Recorder,
    Window,
    display_available,
    record_suffix_error,
)
from toolkit.pipeline.timing import StageTimes
from toolkit.pipeline.track_stage import Detected, TrackStage

__all__ = ["DemoSummary", "format_summary", "run_demo"]  # format_summary: its home before demo_summary


def required_kinds(config: PipelineConfig) -> list[str]:
    """The model kinds this configuration needs."""
    kinds = ["detector"]
    if config.behaviour == "model":
        kinds.append("behaviour")
    if config.every_n_seg > 0:
        kinds.append("segmenter")
    return kinds


def locate_models(config: PipelineConfig) -> dict[str, Path]:
    """``{kind: .tflite path}``: ``config.detector`` / ``config.segmenter`` files where given, the rest from
    ``config.models`` or the shipped zoo; UsageError naming what is missing."""
    from toolkit.paths import zoo_dir
    from toolkit.pipeline.model_files import find_models

    chosen = {
        kind: Path(path).expanduser()
        for kind, path in (("detector", config.detector), ("segmenter", config.segmenter))
        if path
    }
    for kind, path in chosen.items():
        if not path.is_file():
            raise UsageError(f"--{kind} {path}: file not found")
    needed = [kind for kind in required_kinds(config) if kind not in chosen]
    found = (
        find_models(
            Path(config.models) if config.models else zoo_dir(), needed, edgetpu=config.delegate == "edgetpu"
        )
        if needed
        else {}
    )
    return {kind: chosen.get(kind) or found[kind] for kind in required_kinds(config)}


def locate_adapters(config: PipelineConfig, models: dict[str, Path]) -> dict[str, Any]:
    """``{kind: AdapterConfig}`` for third-party detector / segmenter files (:mod:`toolkit.adapters.third_party`);
    our own models need none. A foreign model without an adapter config is a UsageError saying what to pass."""
    from toolkit.adapters.third_party import load_adapter
    from toolkit.pipeline.model_files import model_kind
    from toolkit.pipeline.segment import CLASSES

    adapters: dict[str, Any] = {}
    for kind, given in (("detector", config.detector_adapter), ("segmenter", config.segmenter_adapter)):
        if kind not in models:
            continue
        if given:
            adapter = load_adapter(given, CLASSES if kind == "segmenter" else ("person",))
            if adapter.kind != kind:
                raise UsageError(f"--{kind}-adapter {given} describes a {adapter.kind}, not a {kind}")
            adapters[kind] = adapter
        elif model_kind(models[kind]) != kind:
            raise UsageError(
                f"{models[kind].name} is not one of this toolkit's {kind}s (no manifest kind or "
                f"signature names): pass --{kind}-adapter CONFIG.toml to read it (deploy/adapters/ "
                "has configs for Coral's DeepLab segmenters and SSD detectors)"
            )
    return adapters


def synthetic_homography(spec: str | None) -> Any:
    """The synthetic scene's own image->ground homography for a synthetic source spec, else None."""
    import numpy as np

    from toolkit.data.synthetic import StreetScene
    from toolkit.pipeline.geometry import Homography
    from toolkit.pipeline.sources import SourceConfig, _scene_config, parse_spec

    kind, _, options = parse_spec(spec)
    if kind != "synthetic":
        return None
    scene = _scene_config(options, SourceConfig())
    # The camera depends only on the seed and the view settings; skip the warm-up simulation.
    camera_only = StreetScene(dataclasses.replace(scene, warmup_s=0.0, intent_horizon_s=0.1))
    to_ground = np.linalg.inv(camera_only.homography())
    return Homography(to_ground / to_ground[2, 2], (scene.width, scene.height), "synthetic scene camera")


class _Events:
    """Event-log sink: one validated-or-not JSON line per processed frame."""

    def __init__(self, path: str, validate: bool, source: dict[str, Any], ground_units: str | None) -> None:
        from toolkit.pipeline.events import EventWriter

        self.writer = EventWriter(path, validate=validate)
        self.source = source
        self.ground_units = ground_units

    def __call__(self, image: Any, packet: FramePacket, event_ms: dict[str, float]) -> None:
        from toolkit.pipeline.events import frame_event

        if self.source["width"] is None:
            self.source.update(width=int(image.shape[1]), height=int(image.shape[0]))
        self.writer.write(
            frame_event(
                packet.index,
                packet.timestamp,
                self.source,
                packet.tracks,  # type: ignore[arg-type]
                packet.predictions,
                event_ms,
                packet.dropped,
                self.ground_units,
                packet.crossings,
            )
        )

    def close(self) -> None:
        self.writer.close()


def _server_sink(server: Any, worker: OutputWorker) -> Callable[..., None]:
    def publish(image: Any, packet: FramePacket, event_ms: dict[str, float]) -> None:
        src = packet.source_stats
        status = {
            "fps": worker.fps,
            "frames": packet.seq + 1,
            "latency_ms": {k: round(v, 2) for k, v in event_ms.items()},
            "frames_dropped": packet.dropped,
            "reconnects": src.get("reconnects"),
            "stalls": src.get("stalls"),
            "source_status": src.get("status"),
            "tracks": len(packet.tracks),
            "source": src,
        }
        server.publish(image, status)

    return publish


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for a moment: LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate" from
    C++ when the first interpreter is made, which would break the CLI's one-line error output."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def auto_threads(config: PipelineConfig) -> int:
    """Interpreter threads per model: the configured number, else half the usable cores when pipelined (the
    stage threads already keep the cores busy; on 2 cores one interpreter thread costs less CPU per frame than two,
    toolkit bench pipeline), all of them when serial."""
    from toolkit.runtime.runner import default_threads

    if config.threads:
        return config.threads
    return max(1, default_threads() // 2) if config.pipelined else default_threads()


def run_demo(
    config: PipelineConfig,
    stop: threading.Event | None = None,
    on_frame: Callable[[int], None] | None = None,
    on_start: Callable[[dict[str, Any]], None] | None = None,
    on_progress: Callable[[DemoProgress], None] | None = None,
) -> DemoSummary:
    """Run the pipeline until the source ends, ``max_frames``, ``stop`` is set or the window is closed.

    ``on_frame(entered)`` is called after each frame is detected and handed on (soak tests sample memory there); ``on_start(info)`` once everything is open (info has the server URL); ``on_progress(DemoProgress)``
    after each frame is written, in the output thread (:class:`~toolkit.pipeline.demo_summary.ProgressLog`
    prints one every 10 s). Returns a :class:`~toolkit.pipeline.demo_summary.DemoSummary`
    (``format_summary`` prints it, ``.to_dict()`` is the JSON).
    Bad input raises UsageError before any output file appears; a camera that
    cannot be opened raises DeviceUnavailable; one that gives up mid-run raises it after the outputs are saved.
    """
    from toolkit.pipeline.behaviour import BehaviourPredictor
    from toolkit.pipeline.crossing import CrossingConfig, RoadCrossing, load_road_region
    from toolkit.pipeline.detect import Detector
    from toolkit.pipeline.geometry import load_homography
    from toolkit.pipeline.notify import ServiceNotifier
    from toolkit.pipeline.segment import Segmenter
    from toolkit.pipeline.sources import open_source, parse_spec
    from toolkit.pipeline.tracker import Tracker
    from toolkit.runtime.runner import Runner

    cfg = config
    address = parse_address(cfg.serve) if cfg.serve else None
    if cfg.record and Path(cfg.record).suffix.lower() not in FOURCC:
        raise record_suffix_error(cfg.record)
    check_writable(cfg.record, "--record")
    check_writable(cfg.events, "--events")
    parse_spec(cfg.source)  # a missing file or a bad spec is reported before anything is opened
    if cfg.oracle_detections and parse_spec(cfg.source)[0] != "synthetic":
        raise UsageError("oracle_detections needs the synthetic source (the only one with true boxes)")
    models = locate_models(cfg)
    adapters = locate_adapters(cfg, models)
    from toolkit.pipeline.ground_source import homography_info

    if cfg.homography == "auto":  # the camera's saved estimate from its people (made now on first use)
        from toolkit.pipeline.ground_source import auto_homography

        homography = auto_homography(
            cfg.source, cfg.detector or cfg.models, cfg.threads, log=lambda text: print(text, file=sys.stderr)
        )
    else:
        homography = load_homography(cfg.homography) if cfg.homography else synthetic_homography(cfg.source)
    ground_plane = homography_info(homography)
    road_polygons = load_road_region(cfg.road_region) if cfg.road_region else []
    threads = auto_threads(cfg)

    with ExitStack() as stack:
        recorder = stack.enter_context(Recorder(cfg.record, cfg.record_fps)) if cfg.record else None
        server = None
        if address is not None:
            from toolkit.pipeline.server import LiveServer

            server = stack.enter_context(
                LiveServer(*address)
            )  # a taken port fails here, before the models load
            from toolkit.pipeline.ground_source import saved_estimate_path

            server.ground_path = saved_estimate_path(
                cfg.source
            )  # /ground.html saves this camera's homography
        with quiet_stderr():
            runners = {
                kind: Runner(path, num_threads=threads, delegate=cfg.delegate, fallback=cfg.fallback)
                for kind, path in models.items()
            }
            detector = stack.enter_context(Detector(runners["detector"], adapter=adapters.get("detector")))
            predictor = stack.enter_context(
                BehaviourPredictor(runners.get("behaviour"), homography=homography)
            )
            segmenter = (
                stack.enter_context(Segmenter(runners["segmenter"], adapter=adapters.get("segmenter")))
                if "segmenter" in runners
                else None
            )
        models = {kind: runner.path for kind, runner in runners.items()}  # the CPU originals after a fallback
        fallbacks = {kind: r.fallback_reason for kind, r in runners.items() if r.fallback_reason}
        checks = {kind: r.model_check for kind, r in runners.items()}  # which check vouched for each file
        source = stack.enter_context(open_source(cfg.source, realtime=cfg.realtime, loop=cfg.loop))
        if (
            recorder is not None and recorder.fps is None
        ):  # live cameras do not report a rate: 30 is their usual
            recorder.fps = check_record_fps(source.fps or 30.0, f"the frame rate of {source.name}")
        times = StageTimes(cfg.stats_window)
        worker = OutputWorker(segmenter, cfg.every_n_seg, [], times, cfg.pipelined, cfg.queue_depth)
        if recorder is not None:
            worker.sinks.append(lambda image, packet, ms: recorder.write(image))
        if cfg.events:
            events = _Events(
                cfg.events,
                cfg.validate_events,
                {"name": source.name, "width": None, "height": None, "fps": source.fps},
                predictor.ground_units,
            )
            stack.callback(events.close)
            worker.sinks.append(events)
        if server is not None:
            worker.sinks.append(_server_sink(server, worker))
        window = Window(worker.quit) if cfg.window and display_available() else None
        if window is not None:
            worker.sinks.append(window)
        if on_progress is not None:
            worker.sinks.append(
                lambda image, packet, ms: on_progress(
                    DemoProgress(packet.seq + 1, worker.fps, len(packet.tracks), packet.dropped)
                )
            )
        notifier = (
            ServiceNotifier.from_env()
        )  # systemd Type=notify: READY once frames flow, WATCHDOG per frame
        if notifier.enabled:
            stack.callback(notifier.close)
            worker.sinks.append(notifier.frame_done)
        if on_start is not None:
            on_start(
                {
                    "url": server.url if server else None,
                    "source": source.name,
                    "models": models,
                    "window": window is not None,
                }
            )
        crossing = (
            RoadCrossing(
                CrossingConfig(prior_weight=0.5 if cfg.crossing == "road" else 0.0),
                road_polygons,
                segmenting=segmenter is not None,
            )
            if cfg.crossing != "model"
            else None
        )
        worker.road_polygons, worker.crossing = road_polygons, crossing
        track = TrackStage(Tracker(), predictor, worker, times, source.fps, cfg.pipelined, cfg.queue_depth)
        loop = _Loop(cfg, source, detector, segmenter is not None, track, worker, times)
        try:
            loop.run(stop or threading.Event(), on_frame)
        finally:
            track.close()  # drains into the output stage, which then drains into the writers
            worker.close()
            loop.cpu_end = time.process_time()  # process CPU time (all threads) of the processed frames
            notifier.stopping(loop.reason or "")
            if window is not None:
                window.close()
        error = worker.error or track.error
        if error is not None:
            if isinstance(error, ToolkitError):
                raise error
            raise ToolkitError(f"pipeline stage failed: {type(error).__name__}: {error}") from error
        source_stats = source.stats()
        record_kept = recorder.close(keep=True) if recorder is not None else False

    elapsed = (worker.last_done - loop.t_first) if (loop.t_first is not None and worker.last_done) else 0.0
    summary = run_figures(
        cfg,
        worker.frames_done,
        elapsed,
        times,
        source_stats,
        track.max_track_id,
        models,
        threads,
        loop.reason,
    )
    done = worker.frames_done
    summary["cpu_ms_per_frame"] = (
        round((loop.cpu_end - loop.cpu_start) * 1e3 / done, 3)
        if done and loop.cpu_start is not None
        else None
    )
    summary["behaviour_calls_per_frame"] = round(track.behaviour_calls / max(done, 1), 3)
    summary.update(
        _cpu_estimate(
            summary["cpu_ms_per_frame"],
            done,
            {"detect": loop.thread_cpu_s, "track": track.cpu_s, "output": worker.cpu_s},
            cfg.pipelined,
        )
    )
    summary["ground_units"] = predictor.ground_units  # "m" with a homography; None: paths in image units
    summary["ground_plane"] = ground_plane
    summary["record"] = str(cfg.record) if record_kept else None
    summary["record_frames"] = recorder.frames if recorder is not None else 0
    summary["delegate"] = cfg.delegate
    summary["fallback"] = fallbacks or None  # {kind: why} where --fallback cpu replaced the delegate
    summary["model_checks"] = checks
    if loop.failure is not None:
        raise DeviceUnavailable(f"{loop.failure} (after {done} frames; the outputs were saved)")
    return DemoSummary(**summary)


def oracle_detections(truth: Any, min_visibility: float = 0.3) -> list[Any]:
    """The synthetic scene's true person boxes (at least ``min_visibility`` visible) as score-1 detections."""
    from toolkit.adapters.detect import Detection

    keep = truth.visibility >= min_visibility
    return [Detection(tuple(float(v) for v in box), 1.0) for box in truth.boxes[keep]]


class _Loop:
    """The detection stage, in the calling thread: read the newest frame, detect, hand over to tracking."""

    def __init__(
        self,
        cfg: PipelineConfig,
        source: Any,
        detector: Any,
        segment: bool,
        track: TrackStage,
        output: OutputWorker,
        times: StageTimes,
    ) -> None:
        self.cfg, self.source, self.detector, self.segment = cfg, source, detector, segment
        self.track, self.output, self.times = track, output, times
        self.processed = 0  # frames that entered the pipeline
        self.reason = "stopped"
        self.failure: DeviceUnavailable | None = None
        self.t_first: float | None = None
        self.cpu_start: float | None = None
        self.cpu_end = 0.0
        self.thread_cpu_s = 0.0  # CPU time of this (the detection) thread

    def _stop_reason(self, stop: threading.Event) -> str | None:
        if stop.is_set():
            return "signal"
        if self.cfg.max_frames is not None and self.processed >= self.cfg.max_frames:
            return "max_frames"
        if self.track.error is not None or self.output.error is not None:
            return "stage error"
        if self.output.quit.is_set():
            return "window closed"
        return None

    def run(self, stop: threading.Event, on_frame: Callable[[int], None] | None) -> None:
        from toolkit.pipeline.sources import EndOfStream

        cfg, source, detector = self.cfg, self.source, self.detector
        cpu_start = time.thread_time()
        while (reason := self._stop_reason(stop)) is None:
            t0 = time.perf_counter()
            try:
                frame = source.read(timeout=0.1)
            except EndOfStream:
                reason = "end of stream"
                break
            except DeviceUnavailable as exc:
                self.failure, reason = exc, "source failed"
                break
            if frame is None:
                continue
            t1 = time.perf_counter()
            if self.t_first is None:
                self.t_first, self.cpu_start = t1, time.process_time()
            detections = detector(frame.image)
            if cfg.oracle_detections:
                detections = oracle_detections(frame.truth)
            det = detector.timings
            stage_ms = {
                "wait": (t1 - t0) * 1e3,
                "pre": det["pre"],
                "detect": det["infer"],
                "post": det["post"],
            }
            self.times.add(stage_ms)
            seg_due = self.segment and self.processed % cfg.every_n_seg == 0
            if not self.track.submit(
                Detected(self.processed, frame, detections, stage_ms, seg_due, source.stats())
            ):
                reason = "stage error"
                break
            self.processed += 1
            if on_frame is not None:
                on_frame(self.processed)
        self.reason = reason
        self.thread_cpu_s = time.thread_time() - cpu_start
