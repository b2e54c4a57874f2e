"""The shipped pedestrian detector vs OpenCV's classical HOG people detector on the same real video frames.

Frame by frame (alternating which goes first), times each full detector, frame in -> person boxes out:

* the detector as the camera pipeline runs it (:class:`toolkit.pipeline.detect.Detector`: letterbox, RGB,
  quantize, invoke, heatmap decode + NMS in numpy), with its stage split (pre / invoke / post);
* HOG exactly as the evaluation scores it (:class:`toolkit.eval.hog.HogPeopleDetector`: the frame enlarged to 720
  rows so that 12-40 px people fill its 64x128 window, then ``detectMultiScale`` with OpenCV's grouping) -- the
  configuration whose AP sits beside the detector's in the model card;
* HOG at the frame's own size (OpenCV's defaults: faster, but blind to people under ~100 px).

Prints p50s, the ratios HOG / detector and boxes per frame, writes JSON (default
build/bench/bench_hog_vs_detector.json). Device-path only (numpy, OpenCV, LiteRT): runs on a Raspberry Pi as is.

    python scripts/bench_hog_vs_detector.py [--detector models/person_detector/person_detector_int8.tflite]
                                            [--frames 200] [--threads 1]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from toolkit.errors import UsageError, run_script
from toolkit.eval.hog import HogConfig, HogPeopleDetector
from toolkit.fileio import write_json_atomic
from toolkit.paths import shared_path, zoo_dir
from toolkit.pipeline.detect import Detector
from toolkit.runtime import Runner


def read_frames(path: Path, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        while len(frames) < count:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        capture.release()
    if not frames:
        raise UsageError(f"no frames could be read from {path}: not a video OpenCV can decode")
    return frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", type=Path, help="the detector .tflite (default: the shipped zoo's)")
    parser.add_argument("--video", type=Path, help="default: shared data/pedestrian_video/pedestrians.avi")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="detector threads (and cv2.setNumThreads)")
    parser.add_argument("--out", type=Path, default=Path("build/bench/bench_hog_vs_detector.json"))
    args = parser.parse_args()

    model = args.detector or zoo_dir() / "person_detector" / "person_detector_int8.tflite"
    video = args.video or shared_path("data", "pedestrian_video", "pedestrians.avi")
    frames = read_frames(video, args.frames)
    cv2.setNumThreads(args.threads)
    detector = Detector(Runner(model, num_threads=args.threads))
    hogs = {"hog_as_scored": HogPeopleDetector(), "hog_native": HogPeopleDetector(HogConfig(min_height=0))}
    runs = {
        "detector": lambda f: detector(f),
        **{
            name: (lambda f, h=h: h.detect(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))[0]) for name, h in hogs.items()
        },
    }
    for frame in frames[:3]:  # warm-up all
        for run in runs.values():
            run(frame)

    clock = time.perf_counter_ns
    ms: dict[str, list[float]] = {name: [] for name in runs}
    count: dict[str, list[int]] = {name: [] for name in runs}
    split: dict[str, list[float]] = {"pre": [], "infer": [], "post": []}
    names = list(runs)
    for i, frame in enumerate(frames):
        for name in names[i % len(names) :] + names[: i % len(names)]:  # rotate who goes first
            t0 = clock()
            found = runs[name](frame)
            ms[name].append((clock() - t0) / 1e6)
            count[name].append(len(found))
            if name == "detector":
                for key in split:
                    split[key].append(detector.timings[key])

    def p50(values: list[float]) -> float:
        return round(float(np.median(values)), 3)

    result = {
        "video": str(video),
        "frames": len(frames),
        "frame_size": list(frames[0].shape[1::-1]),
        "detector": str(model),
        "detector_input": detector.runner.inputs["image"].describe(),
        "threads": args.threads,
        **{
            name: {
                "p50_ms": p50(ms[name]),
                "p90_ms": round(float(np.percentile(ms[name], 90)), 3),
                "boxes_per_frame": round(float(np.mean(count[name])), 2),
            }
            for name in runs
        },
        "detector_stages_p50_ms": {key: p50(values) for key, values in split.items()},
        "hog_config_as_scored": vars(HogConfig()),
        "p50_ratio_hog_as_scored_over_detector": round(p50(ms["hog_as_scored"]) / p50(ms["detector"]), 2),
        "p50_ratio_hog_native_over_detector": round(p50(ms["hog_native"]) / p50(ms["detector"]), 2),
        "host": {"machine": platform.machine(), "python": platform.python_version()},
    }
    detector.close()
    write_json_atomic(args.out, result)
    print(
        f"{len(frames)} frames of {video.name} ({frames[0].shape[1]}x{frames[0].shape[0]}), {args.threads} thread(s)"
    )
    stages = result["detector_stages_p50_ms"]
    print(
        f"detector (pipeline path)  : p50 {result['detector']['p50_ms']:.2f} ms (pre {stages['pre']:.2f}, "
        f"invoke {stages['infer']:.2f}, post {stages['post']:.2f}), {result['detector']['boxes_per_frame']} boxes/frame"
    )
    for name in hogs:
        print(
            f"{name:<26}: p50 {result[name]['p50_ms']:.2f} ms, {result[name]['boxes_per_frame']} boxes/frame, "
            f"{result[f'p50_ratio_{name}_over_detector']:.1f}x the detector's time"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main, "bench_hog_vs_detector.py"))
