"""``toolkit demo``: the camera pipeline -- detect, track, predict behaviour, segment, draw, record/serve.

Only argparse-level code at import time: OpenCV, LiteRT and numpy are imported inside run().
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from typing import Any

from toolkit.cli.common import add_json_flag, non_negative_int, positive_float, positive_int

HELP = "run the camera pipeline: detect -> track -> behaviour -> segment -> draw; record, log, serve"
DESCRIPTION = """Run the camera pipeline on a camera, a video file, a stream or the synthetic street scene.

Per frame: capture (own thread, newest frame only; late frames are dropped and counted) -> int8 person detector
-> tracker -> behaviour Transformer per confirmed track (12 future positions + crossing probability) ->
segmenter every N-th frame -> overlay -> outputs. Models come from the shipped zoo (models/) unless --models
names a folder; they are found by kind (manifest or signature names), not by file name.

Ctrl-C or SIGTERM stop cleanly (the recording is finalised, every event line is complete) and print the summary;
the exit code is then 0 (a second Ctrl-C stops at once: 130). A file source ends the run at its end (or loops
with --loop). Where stderr is not a terminal (piped, a file, systemd) a progress line is printed every 10 s.

The overlay: each track's box, its predicted path (dots fading into the future) and a label "#id n%", n = the
chance that the person's predicted paths enter the road within 4.8 s, averaged with the behaviour model's learned
guess (red "CROSS" from 50%: only when a path enters the road): the road is the segmenter's road class
(remembered over segmentations) or the --road-region polygons; with no road it is 0.
Without a segmenter or region (--every-n-seg 0) n is the behaviour model's learned guess, and the legend says
so. The tint is the segmenter's classes. A slim bar at the top or bottom edge shows FPS, ms per stage and a legend of both.

examples:
  toolkit demo                                    # synthetic street, window if there is a display
  toolkit demo --source 0 --serve 0.0.0.0:8080    # USB camera, live view at http://<board>:8080/
  toolkit demo --source picamera2 --headless --record street.mp4 --events street.jsonl
  toolkit demo --source clip.avi --homography clip_h.json --max-frames 300 --json
  toolkit demo --source 0 --homography auto       # ground plane from the people, saved for this camera
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        metavar="SPEC",
        help="video file, camera index (0), /dev/videoN, rtsp:// or http:// URL, 'picamera2', or "
        "'synthetic[:seed=N,fps=F,...]' (default: the synthetic street scene)",
    )
    parser.add_argument(
        "--models",
        metavar="DIR",
        help="folder with the detector, behaviour and segmenter .tflite files (default: models/)",
    )
    parser.add_argument(
        "--homography",
        metavar="FILE",
        help="image->ground homography JSON (toolkit ground): behaviour runs in metres; 'auto': this "
        "source's saved estimate from its people, made from its first 120 s on first use (default: the "
        "synthetic scene's own camera; other sources without one predict in person-height units)",
    )
    parser.add_argument(
        "--headless", action="store_true", help="never open a window (the default when there is no display)"
    )
    parser.add_argument(
        "--record",
        metavar="OUT.webm",
        help="save the annotated video: .webm (VP8, plays in browsers), .mp4 (mp4v) or .avi (MJPG)",
    )
    parser.add_argument(
        "--events", metavar="OUT.jsonl", help="write one JSON line per frame (tracks, paths, timings)"
    )
    parser.add_argument(
        "--serve",
        metavar="HOST:PORT",
        help="live view: MJPEG stream and status page (e.g. 0.0.0.0:8080; port 0 = any free)",
    )
    parser.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N processed frames")
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="interpreter threads per model (default: half the usable cores: the pipeline "
        "stages already run in parallel)",
    )
    parser.add_argument(
        "--every-n-seg",
        type=non_negative_int,
        metavar="N",
        help="segment every N-th frame, reuse the mask in between (default 3; 0 = off)",
    )
    parser.add_argument(
        "--behaviour",
        choices=("model", "constant-velocity"),
        help="model (default) or the constant-velocity baseline (no behaviour model needed)",
    )
    parser.add_argument(
        "--crossing",
        choices=("road", "road-only", "model"),
        help="road (default): a track's crossing chance is the chance its predicted paths enter the road region "
        "(segmenter or --road-region), half-blended with the model's learned guess where there is road, 0 where "
        "there is none; road-only: without the blend; model: the learned guess alone",
    )
    parser.add_argument(
        "--road-region",
        metavar="JSON",
        help="the road as polygon(s) in frame pixels, a JSON file or inline, e.g. "
        "'[[0,300],[480,300],[480,360],[0,360]]' or {\"polygons\": [...]}; replaces the segmenter's road",
    )
    parser.add_argument("--loop", action="store_true", help="restart a file source at its end")
    parser.add_argument(
        "--no-pacing",
        action="store_true",
        help="process files and the synthetic scene as fast as possible instead of at their frame "
        "rate (for benchmarking; nothing is dropped)",
    )
    parser.add_argument(
        "--record-fps",
        type=positive_float,
        metavar="F",
        help="frame rate written into the recording, 0.01-240 (default: the source's own)",
    )
    parser.add_argument(
        "--detector",
        metavar="FILE.tflite",
        help="use this detector instead of the model folder's: ours, or a third-party one with "
        "--detector-adapter",
    )
    parser.add_argument(
        "--segmenter",
        metavar="FILE.tflite",
        help="use this segmenter instead of the model folder's: ours, or a third-party one with "
        "--segmenter-adapter",
    )
    parser.add_argument(
        "--detector-adapter",
        metavar="CONFIG.toml",
        help="how to read a third-party detector (output 'ssd': boxes, classes, scores, count) and "
        "which of its labels are people; see deploy/adapters/",
    )
    parser.add_argument(
        "--segmenter-adapter",
        metavar="CONFIG.toml",
        help="how to read a third-party segmenter (argmax ids or scores) and map its labels to "
        "ours; see deploy/adapters/coral_deeplab_cityscapes.toml",
    )
    parser.add_argument(
        "--delegate",
        metavar="NAME|PATH.so",
        help="xnnpack (default), none, edgetpu (Coral: takes *_edgetpu.tflite models from the model "
        "folder first), or a delegate library path",
    )
    parser.add_argument(
        "--fallback",
        choices=["cpu"],
        help="when the delegate is missing, run on the CPU (Edge TPU models as their CPU originals) "
        "instead of exiting 3; the summary says so",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML/JSON file with PipelineConfig keys; command-line flags override it",
    )
    add_json_flag(parser)


def _config(args: argparse.Namespace) -> Any:
    from toolkit.config import apply_overrides, load_config_file
    from toolkit.pipeline.config import PipelineConfig

    config = PipelineConfig()
    from_file: dict[str, Any] = load_config_file(args.config) if args.config else {}
    if from_file:
        config = apply_overrides(config, from_file, where=f"config file {args.config}")
    flags = {
        "source": args.source,
        "models": args.models,
        "homography": args.homography,
        "record": args.record,
        "events": args.events,
        "serve": args.serve,
        "max_frames": args.max_frames,
        "threads": args.threads,
        "every_n_seg": args.every_n_seg,
        "record_fps": args.record_fps,
        "delegate": args.delegate,
        "fallback": args.fallback,
        "detector": args.detector,
        "segmenter": args.segmenter,
        "detector_adapter": args.detector_adapter,
        "segmenter_adapter": args.segmenter_adapter,
        "behaviour": args.behaviour.replace("-", "_") if args.behaviour else None,
        "crossing": args.crossing.replace("-", "_") if args.crossing else None,
        "road_region": args.road_region,
        "loop": True if args.loop else None,
        "realtime": False if args.no_pacing else None,
        # A window unless --headless (or the file says no); run_demo opens one only where a display exists.
        "window": False if args.headless else (None if "window" in from_file else True),
    }
    return apply_overrides(config, flags, where="demo")


def run(args: argparse.Namespace) -> int:
    from toolkit.cli.common import StatusLine, emit
    from toolkit.pipeline.demo import run_demo
    from toolkit.pipeline.demo_summary import ProgressLog, format_summary

    config = _config(args)
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()
        # A second signal stops at once (the default action) in case something hangs.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with StatusLine("demo") as status:
            # Not a terminal (piped, a file, systemd's journal): the status line cannot show, so a line every 10 s.
            progress = None if status.enabled else ProgressLog(sys.stderr)

            def on_start(info: dict[str, Any]) -> None:
                if info.get("url"):
                    print(f"demo: live view at {info['url']}", file=sys.stderr, flush=True)

            def on_frame(n: int) -> None:
                if n % 10 == 0:
                    status.show(f"{n} frames")

            summary = run_demo(config, stop=stop, on_frame=on_frame, on_start=on_start, on_progress=progress)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        summary = dataclasses.replace(summary, stopped=received[0])
    emit(summary.to_dict(), args.json, lambda result: format_summary(result, explain=True))
    return 0
