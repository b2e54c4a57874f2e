"""Per-frame pipeline stages on hand-checked numbers: IoU, NMS, detector pre/post, behaviour space, segment,
draw and events. Models are replaced by a scripted runner with real TensorSpecs (real (de)quantization)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from toolkit.adapters.boxes import batched_nms, iou_matrix, nms
from toolkit.adapters.detect import Detection, DetectorConfig, postprocess
from toolkit.adapters.image import Letterbox, preprocess
from toolkit.errors import UsageError
from toolkit.pipeline import behaviour, draw, events, segment
from toolkit.pipeline.detect import Detector
from toolkit.pipeline.geometry import Homography, load_homography
from toolkit.pipeline.tracker import Tracker, TrackerConfig
from toolkit.runtime.runner import TensorSpec


class ScriptedRunner:
    """Stands in for toolkit.runtime.Runner: real TensorSpecs, outputs from a function of the raw inputs."""

    def __init__(self, inputs: dict[str, TensorSpec], outputs: dict[str, TensorSpec], produce) -> None:
        self.path = Path("scripted.tflite")
        self.inputs, self.outputs, self.produce = inputs, outputs, produce
        self.fed: list[dict[str, np.ndarray]] = []
        self.closed = False

    def run_raw(self, feeds):
        self.fed.append({k: np.array(v) for k, v in feeds.items()})
        return self.produce(feeds)

    def run(self, **named):
        raw = {k: self.inputs[k].quantize(v) for k, v in named.items()}
        return {k: self.outputs[k].dequantize(v) for k, v in self.run_raw(raw).items()}

    def close(self):
        self.closed = True


def spec(name, shape, dtype=np.float32, scale=0.0, zero_point=0):
    return TensorSpec(name, 0, shape, np.dtype(dtype), scale, zero_point)


# -- IoU and NMS --------------------------------------------------------------------------------------------------


def test_iou_hand_checked():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [10, 0, 20, 10], [0, 0, 0, 0]], float)
    iou = iou_matrix(a, b)
    np.testing.assert_allclose(iou[0], [25 / 175, 1.0, 0.0, 0.0])  # touching edges and empty boxes: 0
    assert iou.shape == (2, 4)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 4)


def test_nms_hand_checked():
    boxes = np.array(
        [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 5], [21, 21, 31, 31]], float
    )
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.75])
    # box1 overlaps box0 by 81/119 = 0.68 -> dropped; box3 by exactly 0.5 -> kept (only > threshold drops);
    # box2 overlaps box4 (score 0.75, kept first) by 81/119 -> dropped.
    assert nms(boxes, scores, 0.5).tolist() == [0, 4, 3]
    assert nms(boxes, scores, 0.7).tolist() == [0, 1, 4, 2, 3]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_batched_nms_only_suppresses_within_a_class():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [1, 1, 11, 11]], float)
    keep = batched_nms(boxes, np.array([0.9, 0.8, 0.7]), np.array(["person", "car", "person"]), 0.5)
    assert keep.tolist() == [0, 1]


# -- detector pre / post ------------------------------------------------------------------------------------------


def _detector_outputs(input_boxes: list[tuple[float, float, float, float, float]], hw=(192, 256)):
    """Hand-built model outputs: one heatmap peak per (x1, y1, x2, y2, score) box in model-input pixels."""
    h, w = hw[0] // 4, hw[1] // 4
    heat = np.zeros((h, w, 1), np.float32)
    box = np.zeros((h, w, 4), np.float32)
    for x1, y1, x2, y2, score in input_boxes:
        cx, cy = (x1 + x2) / 2 / 4, (y1 + y2) / 2 / 4
        ix, iy = int(cx), int(cy)
        heat[iy, ix, 0] = score
        box[iy, ix] = (cx - ix, cy - iy, math.sqrt((x2 - x1) / hw[1]), math.sqrt((y2 - y1) / hw[0]))
    return heat, box


def test_preprocess_letterboxes_and_converts_to_rgb():
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[..., 0] = 255  # pure blue in BGR
    image, transform = preprocess(frame, (192, 256))
    # 640x360 into 256x192: scale min(256/640, 192/360) = 0.4 -> 256x144 centred, 24 rows of padding above.
    assert transform.scale == pytest.approx(0.4) and (transform.pad_x, transform.pad_y) == (0, 24)
    assert image.shape == (192, 256, 3) and image.dtype == np.float32
    np.testing.assert_allclose(image[100, 100], [0.0, 0.0, 1.0])  # RGB order
    np.testing.assert_allclose(image[5, 5], [114 / 255] * 3, atol=1e-6)  # grey padding


def test_postprocess_maps_boxes_back_to_the_frame_and_applies_nms():
    transform = Letterbox(scale=0.4, pad_x=0, pad_y=24, image_hw=(360, 640))
    # Frame box (100, 50, 300, 350) is (40, 44, 120, 164) in the model input. A weaker duplicate two cells to
    # the right survives peak finding but not NMS; a separate person elsewhere survives both.
    heat, box = _detector_outputs(
        [(40, 44, 120, 164, 0.9), (48, 44, 128, 164, 0.6), (180, 60, 220, 160, 0.4), (0, 0, 10, 10, 0.05)]
    )
    dets = postprocess(
        heat, box, transform, (192, 256), DetectorConfig(score_threshold=0.1, iou_threshold=0.5)
    )
    assert [round(d.score, 2) for d in dets] == [0.9, 0.4]
    np.testing.assert_allclose(dets[0].box, (100, 50, 300, 350), atol=1e-3)
    np.testing.assert_allclose(dets[1].box, (450, 90, 550, 340), atol=1e-3)
    assert dets[0].label == "person"


def test_detector_quantizes_input_through_a_lookup_table_and_dequantizes_outputs():
    heat, box = _detector_outputs([(40, 44, 120, 164, 0.9)])
    hq, bq = (
        spec("heatmap", (1, 48, 64, 1), np.int8, 1 / 255, -128),
        spec("box", (1, 48, 64, 4), np.int8, 1 / 255, -128),
    )
    image_spec = spec("image", (1, 192, 256, 3), np.int8, 1 / 255, -128)
    runner = ScriptedRunner(
        {"image": image_spec},
        {"heatmap": hq, "box": bq},
        lambda feeds: {"heatmap": hq.quantize(heat[None]), "box": bq.quantize(box[None])},
    )
    frame = np.full((360, 640, 3), 200, np.uint8)
    frame[0, 0] = (10, 20, 30)
    with Detector(runner) as detector:
        dets = detector(frame)
    assert runner.closed
    fed = runner.fed[0]["image"]
    assert fed.dtype == np.int8 and fed.shape == (1, 192, 256, 3)
    assert fed[0, 100, 100].tolist() == [200 - 128] * 3  # pixel p -> round(p / 255 / (1/255)) - 128
    assert fed[0, 0, 0].tolist() == [114 - 128] * 3  # padding
    assert len(dets) == 1 and dets[0].score == pytest.approx(0.9, abs=1 / 255)
    np.testing.assert_allclose(dets[0].box, (100, 50, 300, 350), atol=2.0)  # int8 box outputs: ~1 px error
    assert set(detector.timings) == {"pre", "infer", "post"}


def test_detector_rejects_a_model_without_detector_outputs_and_bad_frames():
    runner = ScriptedRunner(
        {"image": spec("image", (1, 192, 256, 3))}, {"probs": spec("probs", (1, 10))}, None
    )
    with pytest.raises(UsageError, match="not a detector"):
        Detector(runner)
    ok = ScriptedRunner(
        {"image": spec("image", (1, 192, 256, 3))},
        {"heatmap": spec("heatmap", (1, 48, 64, 1)), "box": spec("box", (1, 48, 64, 4))},
        None,
    )
    with pytest.raises(UsageError, match="uint8 BGR"):
        Detector(ok)(np.zeros((360, 480), np.uint8))


# -- behaviour: coordinate spaces, homography file, constant velocity, predictor ---------------------------------

H = np.array([[0.02, 0.0, -4.8], [0.0, 0.05, -9.0], [0.0, 0.002, 1.0]])  # a mild perspective


def test_model_space_round_trip_without_and_with_homography():
    pixels = np.array([[10.0, 300.0], [240.0, 200.0], [470.0, 359.0]])
    plain = behaviour.model_space((480, 360))
    assert plain.units == "image_height"
    np.testing.assert_allclose(
        plain.to_model(pixels), pixels / 360.0
    )  # divided by the height, nothing flipped
    ground = behaviour.model_space((480, 360), Homography(H, (480, 360)))
    assert ground.units == "m"
    for space in (plain, ground):
        rel, origin = behaviour.to_relative(pixels, space)
        np.testing.assert_allclose(rel[-1], 0.0)
        back, absolute = behaviour.from_relative(rel, origin, space)
        np.testing.assert_allclose(back, pixels, atol=1e-9)
        np.testing.assert_allclose(absolute, space.to_model(pixels), atol=1e-12)


def test_homography_rescales_to_another_frame_size_of_the_same_aspect():
    hom = Homography(H, (480, 360))
    big = hom.for_frame(960, 720)
    np.testing.assert_allclose(big.to_ground([[480.0, 400.0]]), hom.to_ground([[240.0, 200.0]]))
    with pytest.raises(UsageError, match="aspect ratio"):
        hom.for_frame(640, 360)


def _hom_file(**keys):
    return {
        "homography": H.tolist(),
        "direction": "image_to_ground",
        "units": "m",
        "image_size": [480, 360],
        **keys,
    }


def test_load_homography_file(tmp_path):
    good = tmp_path / "h.json"
    reference = Homography(H, (480, 360)).to_ground([[240.0, 200.0]])
    good.write_text(json.dumps(_hom_file(units="cm", ground_to_image=np.linalg.inv(H).tolist(), camera={})))
    hom = load_homography(good)
    np.testing.assert_allclose(hom.to_ground([[240.0, 200.0]]), 0.01 * reference)  # cm converted to metres
    good.write_text(json.dumps(_hom_file(homography=np.linalg.inv(H).tolist(), direction="ground_to_image")))
    np.testing.assert_allclose(load_homography(good).to_ground([[240.0, 200.0]]), reference, atol=1e-9)
    good.write_text(json.dumps(Homography(H, (480, 360)).to_dict()))
    np.testing.assert_allclose(load_homography(good).image_to_ground, H)
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "homography": [[1, 0, 0],\n  oops\n}')
    with pytest.raises(UsageError, match=r"bad.json:3"):
        load_homography(bad)
    partial = _hom_file()
    del partial["image_size"]
    for content, message in [
        (partial, "missing key 'image_size'"),
        (_hom_file(image_sise=[4, 3]), "unknown key 'image_sise'; did you mean 'image_size'"),
        (_hom_file(homography=[[1, 2], [3, 4]]), "3x3"),
        (_hom_file(direction="pixels_to_metres"), "direction"),
        (_hom_file(units="yards"), "units"),
        (_hom_file(image_size=[480.5, 360]), "image_size"),
        (_hom_file(ground_to_image=np.eye(3).tolist()), "not the inverse"),
        (_hom_file(homography=np.zeros((3, 3)).tolist()), "singular"),
    ]:
        bad.write_text(json.dumps(content))
        with pytest.raises(UsageError, match=message):
            load_homography(bad)


def test_homography_written_by_the_synthetic_camera_loads(tmp_path):
    synthetic_camera = pytest.importorskip("toolkit.data.synthetic.camera")
    camera = synthetic_camera.Camera(
        width=480, height=360, height_m=6.0, pitch_deg=30.0, yaw_deg=20.0, focal_px=400.0
    )
    path = synthetic_camera.write_homography(camera, tmp_path / "h.json")
    hom = load_homography(path)
    ground = np.array([[1.0, 2.0], [-3.0, 4.0]])
    pixels = synthetic_camera.ground_to_image(camera.homography(), ground)
    np.testing.assert_allclose(hom.to_ground(pixels), ground, atol=1e-6)


def test_constant_velocity_repeats_the_last_step():
    observed = np.array([[-0.8, 0.2], [-0.45, 0.1], [0.0, 0.0]])  # last step: +0.45 m in x, -0.1 m in y
    future = behaviour.constant_velocity(observed, 12)
    np.testing.assert_allclose(future[0], [0.45, -0.1])
    np.testing.assert_allclose(future[-1], [5.4, -1.2])
    with pytest.raises(ValueError):
        behaviour.constant_velocity(observed[-1:], 12)


def _tracks(seconds: float, fps: float = 10.0, start: int = 0):
    tracker = Tracker(TrackerConfig(min_hits=1))
    visible = []
    for k in range(int(seconds * fps)):
        t = k / fps
        cx = 100 + 50 * t
        visible = tracker.update([Detection((cx - 20, 200, cx + 20, 300), 0.9)], start + t)
    return visible


def test_short_tracks_use_constant_velocity_in_image_space():
    (track,) = _tracks(1.0)  # 0.0 .. 0.9 s: 3 samples
    predictions = behaviour.BehaviourPredictor(None).predict([track], (480, 360))
    pred = predictions[track.id]
    assert pred.predictor == "constant_velocity" and pred.crossing is None and pred.path_ground is None
    assert pred.path_image.shape == (12, 2)
    step = np.diff(pred.path_image, axis=0)
    np.testing.assert_allclose(step, np.tile([20.0, 0.0], (11, 1)), atol=1.5)  # 50 px/s * 0.4 s
    (single,) = _tracks(0.1)
    assert behaviour.BehaviourPredictor(None).predict([single], (480, 360)) == {}


def test_model_prediction_is_fed_relative_metres_and_mapped_back():
    """The model sees the track in the heading frame (toolkit.adapters.behaviour, as in training) and its
    prediction is rotated back into ground metres and mapped to the image."""
    from toolkit.adapters.behaviour import denormalise, normalise

    future = np.stack([np.arange(1, 13) * 0.5, np.zeros(12)], axis=1).astype(np.float32)  # 0.5 m/step ahead
    runner = ScriptedRunner(
        {"track": spec("track", (1, 8, 2), np.int8, 0.05, 0)},
        {"future": spec("future", (1, 12, 2)), "crossing": spec("crossing", (1, 1))},
        lambda feeds: {"future": future[None], "crossing": np.array([[0.83]], np.float32)},
    )
    hom = Homography(H, (480, 360))
    (track,) = _tracks(4.0)
    with behaviour.BehaviourPredictor(runner, homography=hom) as predictor:
        pred = predictor.predict([track], (480, 360))[track.id]
    fed = runner.fed[0]["track"][0].astype(np.float32) * 0.05
    history = track.foot_history()
    relative = hom.to_ground(history) - hom.to_ground(history)[-1]
    expected, rotation = normalise(relative[None])
    np.testing.assert_allclose(fed, expected[0], atol=0.026)  # int8 step 0.05 m
    assert pred.predictor == "model" and pred.crossing == pytest.approx(0.83)
    assert predictor.ground_units == "m" and behaviour.BehaviourPredictor(None).ground_units is None
    origin = hom.to_ground(history[-1])
    ahead = denormalise(future[None], rotation)[0]  # "0.5 m/step ahead" in the walker's own direction
    np.testing.assert_allclose(pred.path_ground, origin + ahead, atol=1e-6)
    np.testing.assert_allclose(pred.path_image, hom.to_image(origin + ahead), atol=1e-6)


def test_without_homography_person_height_sets_the_scale():
    """A 170 px tall person walking 100 px per 0.4 s moves ~1 m per step in model units (1.7 m / 170 px)."""
    space = behaviour.model_space((480, 360), None, person_height_px=170.0)
    assert space.units == "person_scaled_m"
    np.testing.assert_allclose(space.to_model(np.array([[100.0, 0.0]])), [[1.0, 0.0]])
    np.testing.assert_allclose(space.to_image(space.to_model(np.array([[37.0, 12.0]]))), [[37.0, 12.0]])
    assert behaviour.model_space((480, 360), None, person_height_px=2.0).units == "image_height"


# -- segmentation -------------------------------------------------------------------------------------------------


def test_labels_at_frame_crops_padding_and_resizes_the_scores():
    transform = Letterbox(scale=0.25, pad_x=0, pad_y=15, image_hw=(360, 640))  # 640x360 into 160x120
    scores = np.zeros((120, 160, 5), np.float32)
    scores[..., 4] = 1.0  # padding rows say "vehicle": they must not reach the frame
    scores[15:105, :80] = [0, 1, 0, 0, 0]
    scores[15:105, 80:] = [0, 0, 1, 0, 0]
    out = segment.labels_at_frame(scores, transform, (360, 640))
    assert out.shape == (360, 640) and out.dtype == np.uint8 and set(np.unique(out)) == {1, 2}
    assert (out[:, :320] == 1).all() and (out[:, 320:] == 2).all()


def test_labels_at_frame_puts_boundaries_between_model_pixels():
    # the person score falls below the road score a quarter of the way from model pixel 2 to pixel 3; at 4x the
    # interpolated scores cross at frame x = 10.5 (pixel centres), so columns 0-10 are person -- nearest-neighbour
    # labels could only switch on a 4-column step (at 12)
    transform = Letterbox(scale=0.25, pad_x=0, pad_y=0, image_hw=(4, 16))
    scores = np.zeros((1, 4, 5), np.float32)
    scores[0, :, 1] = 0.5
    scores[0, :, 3] = [0.8, 0.7, 0.55, 0.35]
    out = segment.labels_at_frame(scores, transform, (4, 16))
    np.testing.assert_array_equal(out[0], [3] * 11 + [1] * 5)


def test_segmenter_labels_from_a_quantized_output():
    scores = np.full((1, 120, 160, 5), -100, np.int8)
    scores[0, :, :, 1] = 50  # road everywhere ...
    scores[0, 60:, :, 3] = 60  # ... except a person in the bottom half (score 60 vs 50 from model row 60: the
    # interpolated person score passes the road's 15/16 of the way from row 59 to 60, frame row 180.8)
    runner = ScriptedRunner(
        {"image": spec("image", (1, 120, 160, 3), np.int8, 1 / 255, -128)},
        {"mask": spec("mask", (1, 120, 160, 5), np.int8, 1 / 256, -128)},
        lambda feeds: {"mask": scores},
    )
    with segment.Segmenter(runner) as segmenter:
        labels = segmenter(np.zeros((360, 480, 3), np.uint8))
    assert labels.shape == (360, 480) and labels.dtype == np.uint8
    assert (labels[:181] == 1).all() and (labels[181:] == 3).all()
    tint = segment.colourise(labels)
    assert tuple(tint[0, 0]) == tuple(segment.PALETTE_BGR[1]) and tuple(tint[-1, -1]) == tuple(
        segment.PALETTE_BGR[3]
    )


# -- drawing ------------------------------------------------------------------------------------------------------


def test_draw_frame_changes_pixels_in_place_and_survives_nan_paths():
    frame = np.full((360, 480, 3), 100, np.uint8)
    before = frame.copy()
    (track,) = _tracks(3.5)
    path = np.stack([np.linspace(300, 400, 12), np.full(12, 300.0)], axis=1)
    path[8:] = np.nan  # beyond the horizon
    predictions = {track.id: behaviour.Prediction(track.id, path, None, 0.83, "model")}
    labels = np.zeros((360, 480), np.uint8)
    labels[300:] = 1
    out = draw.draw_frame(frame, [track], predictions, labels=labels, fps=24.5, stage_ms={"detect": 11.2})
    assert out is frame and frame.dtype == np.uint8
    changed = (frame != before).any(axis=2)
    assert changed[300:, 0:50].all()  # road tint (away from boxes and text)
    assert changed[:30, :60].any()  # stats panel
    x1, y1, x2, y2 = (int(round(v)) for v in track.box)
    assert changed[y1, x1:x2].any()  # box outline
    assert (frame[:250, 470:] == 100).all()  # far from everything: untouched
    with pytest.raises(ValueError, match="resize the labels"):
        draw.draw_mask(frame, labels[:10])


def test_a_reused_mask_draws_the_same_and_a_new_mask_its_own_colours():
    labels = np.zeros((60, 80), np.uint8)
    labels[30:] = 1
    first = draw.draw_mask(np.full((60, 80, 3), 100, np.uint8), labels)
    again = draw.draw_mask(np.full((60, 80, 3), 100, np.uint8), labels)  # the cached tint
    assert np.array_equal(first, again) and (first[30:] != 100).any()
    other = np.zeros((60, 80), np.uint8)
    other[:30] = 3  # a new segmentation: person colours at the top, nothing below
    fresh = draw.draw_mask(np.full((60, 80, 3), 100, np.uint8), other)
    assert (fresh[30:] == 100).all() and not np.array_equal(fresh[:30], first[:30])


# -- events -------------------------------------------------------------------------------------------------------

SOURCE = {"name": "pedestrians.avi", "width": 480, "height": 360, "fps": 7.0}


def test_event_lines_parse_and_match_the_schema(tmp_path):
    (track,) = _tracks(3.5)
    path = np.stack([np.linspace(300, 400, 12), np.full(12, 300.0)], axis=1)
    path[-1] = np.nan
    pred = behaviour.Prediction(track.id, path, path / 100.0, 0.5, "model")
    file = tmp_path / "events.jsonl"
    with events.EventWriter(file) as writer:
        writer.write(
            events.frame_event(
                0,
                1767225600.0,
                SOURCE,
                [track],
                {track.id: pred},
                {"detect": 11.0},
                dropped_frames=0,
                ground_units="m",
            )
        )
        writer.write(
            events.frame_event(1, 1767225600.1, SOURCE, [], latency_ms={"detect": 9.5}, dropped_frames=2)
        )
    lines = file.read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    events.validate_event(first)
    (entry,) = first["tracks"]
    assert entry["id"] == track.id and entry["predictor"] == "model" and entry["crossing"] == 0.5
    assert len(entry["path_image"]) == 12 and entry["path_image"][-1] is None  # NaN -> null
    assert entry["foot"] == [
        pytest.approx((entry["box"][0] + entry["box"][2]) / 2, abs=0.02),
        entry["box"][3],
    ]
    assert [e["dropped_frames"] for e in events.read_events(file)] == [0, 2]


def test_event_validation_names_the_bad_field(tmp_path):
    event = events.frame_event(3, 1.0, SOURCE, [])
    events.validate_event(event)
    for mutate, message in [
        (lambda e: e.pop("frame"), "missing 'frame'"),
        (lambda e: e.update(timestamp=float("nan")), "event.timestamp"),
        (lambda e: e["source"].update(width="480"), "event.source.width"),
        (lambda e: e.update(extra=1), "unexpected key 'extra'"),
    ]:
        bad = json.loads(json.dumps(event))
        mutate(bad)
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            events.validate_event(bad)
    file = tmp_path / "e.jsonl"
    file.write_text(json.dumps(event) + "\n" + '{"schema": "edge-toolkit/pipeline-frame/1", "fra')
    with pytest.raises(UsageError, match="e.jsonl:2"):
        events.read_events(file)


def test_sigterm_while_writing_leaves_only_complete_lines(tmp_path):
    file = tmp_path / "events.jsonl"
    script = (
        "import sys\n"
        "from toolkit.pipeline import events\n"
        f"source = {SOURCE!r}\n"
        "writer = events.EventWriter(sys.argv[1])\n"
        "i = 0\n"
        "while True:\n"
        "    writer.write(events.frame_event(i, i * 0.04, source, [], latency_ms={'detect': 1.0 + i}))\n"
        "    i += 1\n"
    )
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(file)], env={**os.environ, "PYTHONPATH": str(repo)}
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not file.exists() or file.stat().st_size < 20_000):
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    text = file.read_text()
    assert text.endswith("\n")
    written = events.read_events(file)  # every line parses and validates
    assert len(written) > 50
    assert [e["frame"] for e in written] == list(range(len(written)))
