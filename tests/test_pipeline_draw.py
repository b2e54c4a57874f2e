"""The overlay's layout (issue 16): labels that do not collide and stay in the frame, the status bar that hides
no track, the legend. Hand-made boxes and numbers; no models."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from toolkit.pipeline import draw
from toolkit.pipeline.behaviour import Prediction
from toolkit.pipeline.draw_layout import GAP, bar_edge, candidates, clamp, pack_rows, place_labels

FRAME = (480, 360)  # w, h


def _overlap(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def _inside(rect, size=FRAME) -> bool:
    return rect[0] >= 0 and rect[1] >= 0 and rect[2] <= size[0] and rect[3] <= size[1]


# -- label placer --------------------------------------------------------------------------------------------------


def test_a_lone_label_sits_above_its_box_left_aligned():
    assert place_labels([(100, 100, 120, 150)], [(40, 14)], FRAME) == [(100, 100 - 14 - GAP, 140, 100 - GAP)]


def test_a_crowd_gets_labels_that_neither_overlap_nor_leave_the_frame():
    # seven people shoulder to shoulder (the PETS crowd at frame 330), labels three times their width
    boxes = [(150 + 22 * i, 95 + (i % 2) * 6, 170 + 22 * i, 145 + (i % 2) * 6) for i in range(7)]
    bar = [(0, 0, 470, 16)]
    rects = place_labels(boxes, [(62, 15)] * 7, FRAME, blocked=bar, fallback_sizes=[(28, 15)] * 7)
    assert len(rects) == 7 and all(_inside(r) for r in rects)
    assert not any(_overlap(a, b) for i, a in enumerate(rects) for b in rects[i + 1 :])
    assert not any(_overlap(r, bar[0]) for r in rects)


def test_labels_at_the_frame_edges_are_kept_inside():
    boxes = [(0, 0, 20, 60), (465, 300, 480, 360), (-10, 340, 15, 380)]  # corners, one partly outside
    rects = place_labels(boxes, [(70, 15)] * 3, FRAME)
    assert all(_inside(r) for r in rects)
    assert not any(_overlap(a, b) for i, a in enumerate(rects) for b in rects[i + 1 :])


def test_the_short_form_is_used_before_accepting_an_overlap():
    # a 100x27 frame, two people side by side: the first long label leaves room only for a short second one
    boxes = [(0, 13, 50, 27), (50, 13, 100, 27)]
    rects = place_labels(boxes, [(60, 14), (60, 14)], (100, 27), fallback_sizes=[(20, 14), (20, 14)])
    assert rects == [(0, 0, 60, 14), (80, 0, 100, 14)]


def test_when_nothing_is_free_the_least_overlap_is_taken_inside_the_frame():
    rects = place_labels([(0, 0, 10, 10)] * 3, [(30, 30)] * 3, (30, 30))  # a frame the size of one label
    assert rects == [(0, 0, 30, 30)] * 3


def test_candidates_and_clamp_on_hand_numbers():
    first = candidates((100, 100, 120, 150), (40, 14))
    assert first[0] == (100, 84, 140, 98) and first[1] == (80, 84, 120, 98)  # above, left and right aligned
    assert first[2] == (122, 100, 162, 114)  # beside the head
    assert clamp((-5, -3, 35, 11), FRAME) == (0, 0, 40, 14)
    assert clamp((470, 350, 510, 364), FRAME) == (440, 346, 480, 360)
    with pytest.raises(ValueError, match="2 boxes but 1 label sizes"):
        place_labels([(0, 0, 1, 1)] * 2, [(5, 5)], FRAME)


def test_bar_rows_pack_groups_and_pick_the_free_edge():
    assert pack_rows([100, 100, 100, 300, 50], 250) == [
        [0, 1],
        [2],
        [3],
    ]  # a 4th row would be needed: 50 dropped
    assert pack_rows([100, 100, 50, 50], 300, groups=[2]) == [
        [0, 1, 2, 3]
    ]  # the whole legend fits on the row
    assert pack_rows([100, 100, 80, 50], 300, groups=[2]) == [[0, 1], [2, 3]]  # else it starts its own row
    bar = [(0, 0, 400, 16), (0, 16, 300, 32)]
    assert bar_edge([(50, 5, 70, 60)], bar, 360) == "bottom"  # someone under the top strip
    assert bar_edge([(50, 330, 70, 360)], bar, 360) == "top"
    assert bar_edge([], bar, 360) == "top"


# -- labels, legend, bar --------------------------------------------------------------------------------------------


def test_label_chips_say_the_crossing_probability_floored():
    assert [t for t, _ in draw.label_chips(7, 0.499)] == [
        "#7",
        "49%",
    ]  # never "50%" in grey under a 0.5 threshold
    assert draw.label_chips(7, 0.5)[1] == ("CROSS 50%", draw.CROSSING_BGR)
    assert [t for t, _ in draw.label_chips(7, None)] == ["#7"]  # constant velocity: no probability


def test_legend_lists_the_classes_present_and_what_the_number_means():
    labels = np.zeros((360, 480), np.uint8)
    labels[200:] = 1  # road
    labels[100:150, 100:200] = 3  # person
    labels[0, 0] = 4  # one stray vehicle pixel: not worth a legend entry
    pred = {1: Prediction(1, np.zeros((12, 2)), None, 0.3, "model")}
    items = draw.legend_items(labels, pred)
    names = [item.text for item in items]
    assert names[:2] == ["road", "person"] and "vehicle" not in names and "sidewalk" not in names
    assert items[0].swatch == tuple(int(v) for v in draw.PALETTE_BGR[1])
    assert any("chance of crossing" in n for n in names) and any("50%" in n for n in names)
    no_crossing = {1: Prediction(1, np.zeros((12, 2)), None, None, "constant_velocity")}
    assert not any("crossing" in item.text for item in draw.legend_items(None, no_crossing))


def test_stats_bar_is_slim_and_moves_off_a_track_at_the_top():
    frame = np.full((360, 480, 3), 100, np.uint8)
    track = SimpleNamespace(id=3, box=np.array([10.0, 4.0, 40.0, 90.0]))  # top-left, where the old panel was
    stage = {"detect": 8.0, "track": 1.3, "behav": 1.0, "segment": 31.4, "draw": 0.9, "output": 18.2}
    draw.draw_frame(frame, [track], fps=24.8, stage_ms=stage)
    changed = (frame != 100).any(axis=2)
    assert changed[-18:, :200].any() and not changed[:2, 100:].any()  # the bar went to the bottom edge
    rows = np.flatnonzero(changed[:, 200:].any(axis=1))
    assert rows.min() >= 360 - 20  # one slim row of stats, not a panel
    inside = frame[10:85, 14:37]
    assert (inside == 100).all()  # nothing drawn over the person


def test_hud_off_and_legend_off_draw_no_bar():
    frame = np.full((120, 160, 3), 100, np.uint8)
    labels = np.ones((120, 160), np.uint8)
    draw.draw_frame(
        frame,
        [],
        labels=labels,
        fps=30.0,
        stage_ms={"detect": 5.0},
        config=draw.DrawConfig(hud="off", legend=False, mask_alpha=0.0),
    )
    assert (frame == 100).all()
    with pytest.raises(ValueError, match="hud must be one of auto, top, bottom, off"):
        draw.DrawConfig(hud="left")


def test_labels_drawn_in_a_crowd_do_not_cover_each_other():
    frame = np.zeros((360, 480, 3), np.uint8)
    tracks = [
        SimpleNamespace(id=i + 1, box=np.array([150.0 + 22 * i, 95, 170 + 22 * i, 145])) for i in range(6)
    ]
    preds = {t.id: Prediction(t.id, np.full((12, 2), np.nan), None, 0.1 * t.id, "model") for t in tracks}
    draw.draw_tracks(frame, tracks, preds)
    # each label's id chip is drawn in the track's colour: count the pixels of each colour outside the boxes
    outside = frame.copy()
    outside[95 - 1 : 146, 149:283] = 0
    seen = {t.id: int((outside == draw.id_colour(t.id)).all(axis=2).sum()) for t in tracks}
    assert all(count > 60 for count in seen.values()), (
        seen
    )  # every label's chip is visible, none painted over
