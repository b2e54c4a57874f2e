"""MOTChallenge sequence loader: both gt layouts and column formats, scaling, frames, every error path, PETS."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers_data import one_line_error

from toolkit.data.mot import load_mot_sequence, mot_sequence_from_spec, read_mot_gt
from toolkit.data.spec import parse_spec

SEQINFO = """[Sequence]
name={name}
imDir=img1
frameRate=25
seqLength={length}
imWidth=64
imHeight=48
imExt=.jpg
"""
# MOT15 rows: frame,id,x,y,w,h,conf,X,Y,Z (frame 2's id 3 is zero-marked)
MOT15_GT = (
    "1,1,10,4,8,20,1,-1,-1,-1\n1,2,40,8,10,24,1,-1,-1,-1\n2,1,12,4,8,20,1,-1,-1,-1\n2,3,30,2,6,6,0,-1,-1,-1\n"
)
# MOT17 rows: frame,id,x,y,w,h,conf,class,visibility
MOT17_GT = (
    "\n".join(
        [
            "1,1,10,4,8,20,1,1,1.0",  # pedestrian: scored
            "1,2,40,8,10,24,0,1,0.2",  # zero-marked pedestrian: ignored
            "1,3,20,20,8,16,0,7,1.0",  # static person: distractor
            "2,4,0,0,30,20,0,3,1.0",  # car: ignored
            "2,5,50,0,4,8,1,12,1.0",  # reflection: distractor
            "3,6,1,1,2,2,0,6,1.0",  # non-MOT vehicle: a distractor only in MOT20
        ]
    )
    + "\n"
)


def make_sequence(
    root: Path,
    gt: str = MOT15_GT,
    layout: str = "gt/gt.txt",
    length: int = 3,
    frame_size: tuple[int, int] | None = (32, 24),
    name: str = "TOY-01",
) -> Path:
    """A sequence folder: seqinfo.ini for 64 x 48 frames, gt at ``layout``, optional jpg frames of frame_size."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "seqinfo.ini").write_text(SEQINFO.format(name=name, length=length))
    (root / layout).parent.mkdir(parents=True, exist_ok=True)
    (root / layout).write_text(gt)
    if frame_size is not None:
        (root / "img1").mkdir(exist_ok=True)
        for i in range(length):
            image = np.zeros((frame_size[1], frame_size[0], 3), np.uint8)
            image[:, :, 0] = 200  # blue in BGR
            cv2.imwrite(str(root / "img1" / f"{i + 1:06d}.jpg"), image)
    return root


def write_video(path: Path, frames: int, size: tuple[int, int] = (32, 24)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 20 * i, np.uint8))
    writer.release()
    return path


def test_mot15_images_scaled_and_zero_based(tmp_path):
    seq = load_mot_sequence(make_sequence(tmp_path / "toy"))
    assert (seq.name, seq.frame_rate, seq.size, seq.length, seq.scale) == ("TOY-01", 25.0, (32, 24), 3, 0.5)
    assert seq.video is None and seq.image_dir == tmp_path / "toy" / "img1"
    ids, boxes = seq.gt[0]  # gt.txt frame 1
    assert ids.tolist() == [1, 2] and boxes.dtype == np.float64
    assert boxes.tolist() == [[5, 2, 9, 12], [20, 4, 25, 16]]  # xywh -> xyxy, x 0.5
    assert seq.gt[1][0].tolist() == [1]  # the zero-marked row is not scored ...
    assert seq.ignored[1].tolist() == [[15, 1, 18, 4]]  # ... but kept as ignored
    assert seq.gt[2][0].shape == (0,) and seq.gt[2][1].shape == (0, 4)  # every frame is present
    assert seq.num_boxes == 3 and all(len(d) == 0 for d in seq.distractors.values())
    assert seq.gt_frames().keys() == {0, 1, 2}
    images = list(seq.frames())
    assert [i for i, _ in images] == [0, 1, 2]
    assert images[0][1].shape == (24, 32, 3) and images[0][1].dtype == np.uint8
    assert images[0][1][..., 0].mean() > 150 > images[0][1][..., 2].mean()  # BGR order


def test_mot17_classes_and_root_layout(tmp_path):
    seq = load_mot_sequence(make_sequence(tmp_path / "s", MOT17_GT, layout="gt.txt", frame_size=(64, 48)))
    assert seq.scale == 1.0
    assert seq.gt[0][0].tolist() == [1] and seq.gt[1][0].tolist() == [] and seq.num_boxes == 1
    assert seq.distractors[0].tolist() == [[20, 20, 28, 36]] and seq.distractors[1].tolist() == [
        [50, 0, 54, 8]
    ]
    assert seq.ignored[0].tolist() == [[40, 8, 50, 32]] and seq.ignored[1].tolist() == [[0, 0, 30, 20]]
    assert seq.ignored[2].tolist() == [[1, 1, 3, 3]] and len(seq.distractors[2]) == 0
    mot20 = load_mot_sequence(make_sequence(tmp_path / "m", MOT17_GT, frame_size=(64, 48), name="MOT20-01"))
    assert mot20.distractors[2].tolist() == [[1, 1, 3, 3]] and len(mot20.ignored[2]) == 0


def test_video_frames_limit_and_longer_video(tmp_path):
    root = make_sequence(tmp_path / "v", frame_size=None, length=3)
    video = write_video(tmp_path / "clip.mp4", frames=5)  # longer than seqLength: the first 3 are used
    seq = load_mot_sequence(root, video=video)
    assert (seq.video, seq.image_dir, seq.size, seq.scale, seq.length) == (video, None, (32, 24), 0.5, 3)
    images = list(seq.frames())
    assert len(images) == 3 and images[2][1].shape == (24, 32, 3) and abs(images[2][1].mean() - 40) < 8
    short = load_mot_sequence(root, video=video, limit=1)
    assert short.length == 1 and list(short.gt) == [0] and len(list(short.frames())) == 1
    assert load_mot_sequence(root, video=video, limit=99).length == 3


def test_spec(tmp_path):
    root = make_sequence(tmp_path / "toy")
    seq = mot_sequence_from_spec(f"mot:seq={root},limit=2")
    assert seq.length == 2 and seq.num_boxes == 3
    assert "unknown key 'vidoe' for mot; did you mean 'video'?" in one_line_error(parse_spec, "mot:vidoe=x")
    assert "expected a MOT sequence spec" in one_line_error(mot_sequence_from_spec, "mnist:split=test")


@pytest.mark.parametrize(
    "line, expected",
    [
        ("2,1,12,4,8,20,1", "line 2: expected 10 comma-separated columns 'frame,id,x,y,w,h,conf,...'"),
        ("2,1,12,4,8,20,1,-1,-1,x", "line 2: 'x' is not a number"),
        ("0,1,12,4,8,20,1,-1,-1,-1", "line 2: frame and id must be whole numbers with frame in 1..3"),
        ("4,1,12,4,8,20,1,-1,-1,-1", "frame in 1..3 (seqinfo seqLength), got frame 4"),
        ("1,1.5,12,4,8,20,1,-1,-1,-1", "got frame 1 id 1.5"),
        ("1,1,12,4,8,20,1,-1,-1,-1", "line 2: id 1 already has a box in frame 1 (line 1)"),
    ],
)
def test_malformed_gt_lines_name_file_and_line(tmp_path, line, expected):
    path = tmp_path / "gt.txt"
    path.write_text(f"1,1,10,4,8,20,1,-1,-1,-1\n{line}\n")
    message = one_line_error(read_mot_gt, path, 3)
    assert message.startswith(f"{path} line 2:") and expected in message


def test_bad_class_and_empty_gt(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("1,1,10,4,8,20,1,14,1.0\n")
    assert "line 1: class must be a MOTChallenge class 1..13, got 14" in one_line_error(read_mot_gt, path, 3)
    path.write_text("1,1,10,4,8,20\n")
    assert "expected 9 or 10 comma-separated columns" in one_line_error(read_mot_gt, path, 3)
    path.write_text("\n")
    assert "has no rows" in one_line_error(read_mot_gt, path, 3)


def test_folder_errors(tmp_path):
    assert "MOT sequence folder not found" in one_line_error(load_mot_sequence, tmp_path / "nope")
    root = make_sequence(tmp_path / "s")
    (root / "gt" / "gt.txt").unlink()
    assert "no ground truth (expected gt/gt.txt or gt.txt" in one_line_error(load_mot_sequence, root)
    (root / "seqinfo.ini").unlink()
    assert "seqinfo.ini not found" in one_line_error(load_mot_sequence, root)
    assert "limit must be >= 1" in one_line_error(load_mot_sequence, make_sequence(tmp_path / "t"), limit=0)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("name=x\n", "not a valid ini file"),
        ("[Other]\nname=x\n", "no [Sequence] section"),
        ("[Sequence]\nframeRate=25\nseqLength=3\nimWidth=64\n", "[Sequence] has no imHeight="),
        (
            "[Sequence]\nframeRate=fast\nseqLength=3\nimWidth=64\nimHeight=48\n",
            "frameRate=fast is not a positive float",
        ),
        (
            "[Sequence]\nframeRate=25\nseqLength=0\nimWidth=64\nimHeight=48\n",
            "seqLength=0 is not a positive int",
        ),
    ],
)
def test_malformed_seqinfo(tmp_path, text, expected):
    root = make_sequence(tmp_path / "s")
    (root / "seqinfo.ini").write_text(text)
    message = one_line_error(load_mot_sequence, root)
    assert message.startswith(str(root / "seqinfo.ini")) and expected in message


def test_frame_source_errors(tmp_path):
    root = make_sequence(tmp_path / "s", frame_size=None)
    assert "no image folder 'img1' (seqinfo imDir); pass the sequence's video" in one_line_error(
        load_mot_sequence, root
    )
    assert "video not found" in one_line_error(load_mot_sequence, root, video=tmp_path / "missing.mp4")
    (tmp_path / "bad.mp4").write_bytes(b"not a video" * 10)
    assert "cannot decode video" in one_line_error(load_mot_sequence, root, video=tmp_path / "bad.mp4")
    short = write_video(tmp_path / "short.mp4", frames=2)
    assert "has 2 frames but seqinfo.ini says seqLength=3" in one_line_error(
        load_mot_sequence, root, video=short
    )
    wide = write_video(tmp_path / "wide.mp4", frames=3, size=(40, 24))
    assert "frames are 40x24 but" in one_line_error(load_mot_sequence, root, video=wide)
    images = make_sequence(tmp_path / "i")
    (images / "img1" / "000002.jpg").unlink()
    assert "1 of 3 frames missing, first 000002.jpg" in one_line_error(load_mot_sequence, images)
    assert len(list(load_mot_sequence(images, limit=1).frames())) == 1  # only the frames in use must exist


@pytest.mark.shared
def test_shared_pets_sequence(shared):
    seq = mot_sequence_from_spec("mot")
    assert seq.name == "PETS09-S2L1" and seq.video.name == "pedestrians.avi"
    assert (seq.frame_rate, seq.size, seq.length, seq.scale) == (7.0, (480, 360), 795, 0.625)
    assert len(seq.gt) == 795
    # 4,650 rows in gt.txt: 4,476 scored + 174 zero-marked (people hidden behind the tree, not scored)
    ignored = sum(len(b) for b in seq.ignored.values())
    assert (seq.num_boxes, ignored, seq.num_boxes + ignored) == (4476, 174, 4650)
    ids, boxes = seq.gt[0]  # gt.txt frame 1, x 0.625
    assert len(ids) > 0 and boxes[ids.tolist().index(9)] == pytest.approx(
        [311.875, 98.75, 331.26875, 145.73125]
    )
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 480).all() and (boxes[:, 3] <= 360).all()
    index, image = next(iter(seq.frames()))
    assert index == 0 and image.shape == (360, 480, 3)
