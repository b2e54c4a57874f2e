"""The shipped pedestrian detector vs OpenCV's classical HOG people detector on the same real video frames.

Frame by frame (alternating which goes first), times HOG ``detectMultiScale`` on the frame and the detector's
preprocessing (resize, RGB, scale to the manifest's input_range, quantize) + invoke. Prints p50s and the ratio
HOG / detector, writes JSON (default out/bench_hog_vs_detector.json). Decoding the detector's outputs is the
pipeline's job and is not timed here; the HOG figure includes its own non-maximum grouping.

    python scripts/bench_hog_vs_detector.py --detector models/detector/detector_int8.tflite [--frames 200]

Device-path only (numpy, OpenCV, LiteRT): runs on a Raspberry Pi as is.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolkit.bench.inputs import read_manifest  # noqa: E402
from toolkit.fileio import write_json_atomic  # noqa: E402
from toolkit.paths import shared_path  # noqa: E402
from toolkit.runtime import Runner  # noqa: E402


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
        raise SystemExit(f"error: no frames could be read from {path}")
    return frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", type=Path, required=True, help="the detector .tflite")
    parser.add_argument("--video", type=Path, help="default: shared data/pedestrian_video/pedestrians.avi")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="detector threads (and cv2.setNumThreads)")
    parser.add_argument("--out", type=Path, default=Path("out/bench_hog_vs_detector.json"))
    args = parser.parse_args()

    video = args.video or shared_path("data", "pedestrian_video", "pedestrians.avi")
    frames = read_frames(video, args.frames)
    cv2.setNumThreads(args.threads)
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    manifest = read_manifest(args.detector)
    low, high = (float(v) for v in manifest.get("input_range", [0.0, 1.0]))
    runner = Runner(args.detector, num_threads=args.threads)
    (name, spec), = runner.inputs.items()
    _, height, width, _ = spec.shape
    invoke = runner.interpreter.invoke

    def detector(frame: np.ndarray) -> float:
        """Preprocess + invoke; returns the invoke-only milliseconds."""
        rgb = cv2.cvtColor(cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
        runner.set_inputs({name: spec.quantize(low + rgb[None].astype(np.float32) * ((high - low) / 255.0))})
        t0 = time.perf_counter_ns()
        invoke()
        return (time.perf_counter_ns() - t0) / 1e6

    for frame in frames[:5]:  # warm-up both
        detector(frame)
        hog.detectMultiScale(frame, winStride=(8, 8), padding=(8, 8), scale=1.05)

    clock = time.perf_counter_ns
    hog_ms, det_ms, invoke_ms, boxes = [], [], [], []
    for i, frame in enumerate(frames):
        for which in ((0, 1) if i % 2 == 0 else (1, 0)):  # alternate who goes first
            t0 = clock()
            if which == 0:
                rects, _ = hog.detectMultiScale(frame, winStride=(8, 8), padding=(8, 8), scale=1.05)
                hog_ms.append((clock() - t0) / 1e6)
                boxes.append(len(rects))
            else:
                invoke_ms.append(detector(frame))
                det_ms.append((clock() - t0) / 1e6)

    def p50(values: list[float]) -> float:
        return float(np.median(values))

    result = {
        "video": str(video), "frames": len(frames), "frame_size": list(frames[0].shape[1::-1]),
        "detector": str(args.detector), "detector_input": spec.describe(), "threads": args.threads,
        "hog": {"p50_ms": p50(hog_ms), "p90_ms": float(np.percentile(hog_ms, 90)),
                "mean_people_per_frame": float(np.mean(boxes)),
                "params": {"winStride": [8, 8], "padding": [8, 8], "scale": 1.05}},
        "detector_pre_and_invoke": {"p50_ms": p50(det_ms), "p90_ms": float(np.percentile(det_ms, 90))},
        "detector_invoke_only": {"p50_ms": p50(invoke_ms)},
        "p50_ratio_hog_over_detector": p50(hog_ms) / p50(det_ms),
        "host": {"machine": platform.machine(), "python": platform.python_version()},
    }
    write_json_atomic(args.out, result)
    print(f"{len(frames)} frames of {video.name} ({frames[0].shape[1]}x{frames[0].shape[0]})")
    print(f"HOG detectMultiScale      : p50 {result['hog']['p50_ms']:.2f} ms "
          f"({result['hog']['mean_people_per_frame']:.1f} boxes/frame)")
    print(f"detector pre + invoke     : p50 {result['detector_pre_and_invoke']['p50_ms']:.2f} ms "
          f"(invoke only {result['detector_invoke_only']['p50_ms']:.2f} ms, input {width}x{height} {spec.dtype.name})")
    print(f"HOG / detector (p50)      : {result['p50_ratio_hog_over_detector']:.1f}x")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
