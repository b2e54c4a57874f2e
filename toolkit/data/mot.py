"""MOTChallenge sequences: ``seqinfo.ini``, ``gt.txt`` and the frames, ready for the tracking metrics.

>>> seq = load_mot_sequence(shared_dir() / "data/pedestrian_video/PETS09-S2L1",
...                         video=shared_dir() / "data/pedestrian_video/pedestrians.avi")
>>> seq.frame_rate, seq.size, seq.scale         # 7.0 (seqinfo, not the video header), (480, 360), 0.625
>>> ids, boxes = seq.gt[0]                       # frame 0 = gt.txt frame 1; float64 xyxy in frame pixels
>>> for index, bgr in seq.frames(): ...
>>> read_mot_world(seq.root).rows[0]             # frame 0, id 9, X -4.1554, Y -7.3591 (metres, MOT15 columns)

Layout (motchallenge.net): ``DIR/seqinfo.ini`` ([Sequence] name, imDir, frameRate, seqLength, imWidth, imHeight,
imExt), ground truth at ``DIR/gt/gt.txt`` or ``DIR/gt.txt``, frames ``DIR/<imDir>/000001<imExt>``... or a video.
``gt.txt`` rows are ``frame,id,x,y,w,h,conf,...`` with 1-based frames:

* 10 columns (MOT15: ``...,conf,X,Y,Z`` world coordinates): every row is a pedestrian; conf 0 rows are not scored.
* 9 columns (MOT16/17/20: ``...,conf,class,visibility``): class 1 rows with conf != 0 are scored; classes 2, 7,
  8, 12 (person on vehicle, static person, distractor, reflection; and 6, non-MOT vehicle, in MOT20) are
  distractors whatever their conf -- predictions matched to them are removed before scoring; every other row
  (conf 0 pedestrians, vehicles, occluders) is ``ignored``: it only competes in that matching. This is the
  preprocessing of TrackEval (``trackeval/datasets/mot_challenge_2d_box.py``), which the MOTChallenge uses.

Frames read at another size than imWidth x imHeight (a downscaled re-encode, e.g. the shared PETS clip at
480 x 360 for 768 x 576) get their boxes scaled by frame width / imWidth; a different aspect ratio is an error.
"""

from __future__ import annotations

import configparser
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toolkit.data._text import numbered_fields, read_text, to_floats
from toolkit.data.image_folder import image_size
from toolkit.data.spec import DataSpec, parse_spec
from toolkit.errors import UsageError
from toolkit.paths import shared_dir

PEDESTRIAN = 1  # the evaluated class
DISTRACTOR_CLASSES = (2, 7, 8, 12)  # person on vehicle, static person, distractor, reflection
MOT20_DISTRACTOR_CLASSES = (*DISTRACTOR_CLASSES, 6)  # TrackEval adds non-MOT vehicles for MOT20
NUM_CLASSES = 13  # MOTChallenge classes 1..13; TrackEval rejects others
ASPECT_TOLERANCE = 0.01  # frames may be rescaled, not cropped or stretched
SHARED_SEQUENCE = ("data", "pedestrian_video", "PETS09-S2L1")  # spec default, under the shared folder
SHARED_VIDEO = ("data", "pedestrian_video", "pedestrians.avi")  # its frames (no image folder is shipped)
_READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION

FrameBoxes = dict[int, tuple[np.ndarray, np.ndarray]]  # frame -> (ids int64 (n,), boxes float64 (n, 4) xyxy)


@dataclass(frozen=True, eq=False)
class MotSequence:
    """One MOTChallenge sequence: metadata, per-frame annotations (0-based frames, frame pixels) and its frames."""

    name: str  # sequence name from seqinfo.ini
    root: Path  # the sequence folder
    frame_rate: float  # capture rate from seqinfo.ini (frames per second), never a video header's
    size: tuple[int, int]  # (width, height) of the frames as read
    length: int  # frames covered: seqLength, or the limit asked for
    scale: float  # frame pixels per annotation pixel (1.0 for the original frames)
    gt: FrameBoxes  # every frame 0..length-1 -> scored (ids, boxes); empty arrays where nobody is annotated
    distractors: dict[int, np.ndarray]  # every frame -> distractor boxes (k, 4); predictions on them dropped
    ignored: dict[int, np.ndarray]  # every frame -> unscored boxes (k, 4) that only compete in that matching
    video: Path | None  # the frames' video, or None when they come from image_dir
    image_dir: Path | None  # the frames' image folder, or None when they come from video
    image_ext: str = ".jpg"  # image file extension (seqinfo imExt)

    @property
    def num_boxes(self) -> int:
        """Scored ground-truth boxes over the covered frames."""
        return sum(len(ids) for ids, _ in self.gt.values())

    def gt_frames(self) -> FrameBoxes:
        """{frame: (ids int64 (n,), boxes float64 (n, 4) xyxy)} for every frame 0..length-1 (a copy of ``gt``)."""
        return dict(self.gt)

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(frame index, BGR uint8 image)`` for frames 0..length-1 in order; UsageError if one is missing."""
        if self.video is None:
            for index in range(self.length):
                path = self.image_dir / f"{index + 1:06d}{self.image_ext}"
                image = cv2.imread(str(path), _READ_FLAGS)
                if image is None:
                    raise UsageError(
                        f"cannot read frame {index} of {self.name}: {path} is missing or not an image"
                    )
                yield index, image
            return
        capture = cv2.VideoCapture(str(self.video))
        try:
            for index in range(self.length):
                ok, image = capture.read()
                if not ok:
                    raise UsageError(
                        f"video {self.video} ended after {index} frames; {self.name} needs "
                        f"{self.length} (pass the sequence's full video)"
                    )
                yield index, image
        finally:
            capture.release()


def load_mot_sequence(
    seq_dir: str | Path,
    video: str | Path | None = None,
    limit: int | None = None,
) -> MotSequence:
    """Load a MOTChallenge sequence folder (see the module docstring).

    Takes the folder, an optional ``video`` holding its frames (needed when the folder has no image folder; it
    wins over one) and ``limit`` (keep only the first N frames). Returns a :class:`MotSequence` with boxes in
    the pixels of the frames as read. Every bad input is a one-line UsageError naming the file and the fix.
    """
    root = Path(seq_dir)
    if not root.is_dir():
        raise UsageError(
            f"MOT sequence folder not found: {root} (expected a folder with seqinfo.ini and gt.txt)"
        )
    info = _read_seqinfo(root / "seqinfo.ini")
    if limit is not None and limit < 1:
        raise UsageError(f"limit must be >= 1 frames, got {limit}")
    length = info["seqLength"] if limit is None else min(limit, info["seqLength"])
    image_dir = root / info["imDir"]
    if video is not None:
        size = _video_size(Path(video), info["seqLength"])
        image_dir = None
    elif image_dir.is_dir():
        size = _images_size(image_dir, info["imExt"], length)
    else:
        raise UsageError(
            f"{root}: no frames: no image folder '{info['imDir']}' (seqinfo imDir); pass the "
            "sequence's video (video=PATH)"
        )
    scale = _scale(size, (info["imWidth"], info["imHeight"]), root / "seqinfo.ini")
    distractor_classes = (
        MOT20_DISTRACTOR_CLASSES if info["name"].upper().startswith("MOT20") else DISTRACTOR_CLASSES
    )
    gt, distractors, ignored = read_mot_gt(_gt_path(root), info["seqLength"], distractor_classes)
    empty_ids, empty_boxes = np.zeros(0, np.int64), np.zeros((0, 4))
    return MotSequence(
        name=info["name"],
        root=root,
        frame_rate=info["frameRate"],
        size=size,
        length=length,
        scale=scale,
        gt={t: (gt[t][0], gt[t][1] * scale) if t in gt else (empty_ids, empty_boxes) for t in range(length)},
        distractors={t: distractors.get(t, empty_boxes) * scale for t in range(length)},
        ignored={t: ignored.get(t, empty_boxes) * scale for t in range(length)},
        video=None if video is None else Path(video),
        image_dir=image_dir,
        image_ext=info["imExt"],
    )


def read_mot_gt(
    path: str | Path,
    seq_length: int,
    distractor_classes: tuple[int, ...] = DISTRACTOR_CLASSES,
) -> tuple[FrameBoxes, dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Parse a MOTChallenge ``gt.txt`` (9 or 10 columns, see the module docstring) in annotation pixels.

    Returns ``(gt, distractors, ignored)``: ``{frame: (ids, boxes)}``, ``{frame: boxes}``, ``{frame: boxes}`` with
    0-based frames (file frame - 1) and only the frames that have rows; boxes float64 xyxy. A malformed line,
    a frame outside 1..``seq_length`` or an id twice in a frame is a UsageError naming file and line.
    """
    rows: dict[str, dict[int, list[list[float]]]] = {"gt": {}, "distractor": {}, "ignored": {}}
    seen: dict[tuple[int, int], int] = {}
    columns = None
    for lineno, fields in numbered_fields(read_text(path, "ground-truth file").replace(",", " ")):
        where = f"{path} line {lineno}"
        columns = columns or len(fields)
        if len(fields) not in (9, 10) or len(fields) != columns:
            raise UsageError(
                f"{where}: expected {columns if columns in (9, 10) else '9 or 10'} comma-separated "
                f"columns 'frame,id,x,y,w,h,conf,...' (MOTChallenge gt.txt), got {len(fields)}"
            )
        frame, track, x, y, w, h, conf, *extra = to_floats(fields, where)
        if frame != int(frame) or track != int(track) or not 1 <= frame <= seq_length:
            raise UsageError(
                f"{where}: frame and id must be whole numbers with frame in 1..{seq_length} "
                f"(seqinfo seqLength), got frame {fields[0]} id {fields[1]}"
            )
        cls = PEDESTRIAN if columns == 10 else extra[0]
        if cls != int(cls) or not 1 <= cls <= NUM_CLASSES:
            raise UsageError(f"{where}: class must be a MOTChallenge class 1..{NUM_CLASSES}, got {fields[7]}")
        t = int(frame) - 1
        if (t, int(track)) in seen:  # TrackEval checks every row, whatever its class
            raise UsageError(
                f"{where}: id {int(track)} already has a box in frame {int(frame)} (line "
                f"{seen[t, int(track)]}); ids must be unique within a frame"
            )
        seen[t, int(track)] = lineno
        if cls in distractor_classes:
            kind = "distractor"
        elif cls == PEDESTRIAN and int(conf) != 0:  # TrackEval reads the flag as int
            kind = "gt"
        else:
            kind = "ignored"
        rows[kind].setdefault(t, []).append([track, x, y, x + w, y + h])
    if columns is None:
        raise UsageError(f"ground-truth file {path} has no rows")
    gt = {
        t: (np.array([r[0] for r in rs], np.int64), np.array([r[1:] for r in rs], np.float64))
        for t, rs in rows["gt"].items()
    }
    others = [
        {t: np.array([r[1:] for r in rs], np.float64) for t, rs in rows[kind].items()}
        for kind in ("distractor", "ignored")
    ]
    return gt, others[0], others[1]


WORLD_HOWTO = (
    "use a MOT15 gt.txt with world columns X,Y (e.g. PETS09-S2L1), or project each box's foot point through the "
    "camera's ground-plane calibration into them"
)


@dataclass(frozen=True, eq=False)
class MotWorld:
    """A MOT sequence's ground-truth positions on the ground plane (MOT15 world columns X, Y)."""

    name: str  # sequence name from seqinfo.ini
    frame_rate: float  # frames per second from seqinfo.ini
    rows: (
        np.ndarray
    )  # float64 (R, 4): 0-based frame, track id, X, Y (calibration units; metres for PETS09-S2L1)


def read_mot_world(seq_dir: str | Path, limit: int | None = None) -> MotWorld:
    """Every annotated person's world position in a MOT sequence folder (seqinfo.ini + gt; no frames are read).

    A 10-column MOT15 ``gt.txt`` carries ``X, Y`` (and ``Z``) on the ground plane, from the boxes' foot points
    projected through the sequence's calibration. Every row is kept (conf 0 only means "not scored" for the
    tracking metrics; the person is still there). ``limit`` keeps the first N frames. A 9-column gt (no world
    columns) or world columns that are all 0 / -1 (MOT15's "no calibration") is a one-line UsageError.
    """
    root = Path(seq_dir).expanduser()
    if not root.is_dir():
        raise UsageError(f"MOT sequence folder not found: {root} (expected seqinfo.ini and gt/gt.txt)")
    info = _read_seqinfo(root / "seqinfo.ini")
    path = _gt_path(root)
    read_mot_gt(path, info["seqLength"])  # every check of the tracking loader (columns, frames, unique ids)
    rows = []
    for _, fields in numbered_fields(read_text(path, "ground-truth file").replace(",", " ")):
        if len(fields) != 10:
            raise UsageError(
                f"{path}: {len(fields)} columns, no world coordinates; behaviour windows need ground-plane "
                f"positions in metres: {WORLD_HOWTO}"
            )
        rows.append([float(fields[0]) - 1, float(fields[1]), float(fields[7]), float(fields[8])])
    world = np.asarray(rows, np.float64)
    if np.isin(world[:, 2:4], (0.0, -1.0)).all():
        raise UsageError(
            f"{path}: world columns X,Y are all 0 / -1 (no calibration for this sequence); behaviour windows "
            f"need ground-plane positions in metres: {WORLD_HOWTO}"
        )
    if limit is not None:
        world = world[world[:, 0] < limit]
    return MotWorld(info["name"], info["frameRate"], world)


def mot_sequence_from_spec(spec: str | DataSpec) -> MotSequence:
    """Load the sequence a ``mot`` data SPEC names (``mot:seq=DIR,video=FILE,limit=N``; every key optional).

    Defaults: ``seq`` the shared PETS09-S2L1 folder; ``video`` its ``pedestrians.avi`` when ``seq`` is that
    folder (other folders need ``video=`` only when they have no image folder).
    """
    spec = parse_spec(spec)
    if spec.get("stride") is not None:
        raise UsageError(
            f"data '{spec}': stride spaces behaviour windows; tracking scores every frame -- drop it"
        )
    seq, shared_seq = _spec_folder(spec), shared_dir().joinpath(*SHARED_SEQUENCE)
    video = spec.get("video")
    if video is None and seq.resolve() == shared_seq:
        video = shared_dir().joinpath(*SHARED_VIDEO)
    return load_mot_sequence(seq, video=video, limit=spec.get_int("limit"))


def mot_world_from_spec(spec: str | DataSpec) -> MotWorld:
    """The world positions (:func:`read_mot_world`) of the sequence a ``mot`` SPEC names (``seq`` default: the
    shared PETS09-S2L1 folder; ``limit``: the first N frames; ``video`` is not needed)."""
    spec = parse_spec(spec)
    return read_mot_world(_spec_folder(spec), limit=spec.get_int("limit"))


def _spec_folder(spec: DataSpec) -> Path:
    """The sequence folder of a ``mot`` SPEC; a clear error for another SPEC or a missing shared folder."""
    if spec.name != "mot":
        raise UsageError(
            f"data '{spec}': expected a MOT sequence spec, e.g. mot:seq=DIR (see 'toolkit eval --help')"
        )
    shared_seq = shared_dir().joinpath(*SHARED_SEQUENCE)
    seq = Path(spec.get("seq") or shared_seq)
    if not seq.exists() and seq == shared_seq:
        raise UsageError(f"shared MOT sequence not found: {seq} (set TOOLKIT_SHARED, or pass mot:seq=DIR)")
    return seq


def _read_seqinfo(path: Path) -> dict:
    """seqinfo.ini's [Sequence] values, typed; name / imDir / imExt default to the MOTChallenge conventions."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(read_text(path, "seqinfo.ini"))
    except configparser.Error as exc:
        raise UsageError(f"{path}: not a valid ini file ({str(exc).splitlines()[0]})") from None
    if not parser.has_section("Sequence"):
        raise UsageError(
            f"{path}: no [Sequence] section (expected MOTChallenge seqinfo.ini with name, frameRate, "
            "seqLength, imWidth, imHeight)"
        )
    section = parser["Sequence"]
    info: dict = {
        "name": section.get("name", path.parent.name),
        "imDir": section.get("imDir", "img1"),
        "imExt": section.get("imExt", ".jpg"),
    }
    for key, cast in (("frameRate", float), ("seqLength", int), ("imWidth", int), ("imHeight", int)):
        text = section.get(key)
        if text is None:
            raise UsageError(
                f"{path}: [Sequence] has no {key}= (MOTChallenge seqinfo.ini needs frameRate, "
                "seqLength, imWidth, imHeight)"
            )
        try:
            info[key] = cast(text)
        except ValueError:
            info[key] = None
        if info[key] is None or not info[key] > 0:
            raise UsageError(f"{path}: {key}={text} is not a positive {cast.__name__}; fix seqinfo.ini")
    return info


def _gt_path(root: Path) -> Path:
    for path in (root / "gt" / "gt.txt", root / "gt.txt"):
        if path.is_file():
            return path
    raise UsageError(f"{root}: no ground truth (expected gt/gt.txt or gt.txt in the sequence folder)")


def _video_size(path: Path, seq_length: int) -> tuple[int, int]:
    """(width, height) of the video's first decoded frame; UsageError if unreadable or shorter than seqLength."""
    if not path.is_file():
        raise UsageError(f"video not found: {path} (pass the file holding the sequence's frames)")
    capture = cv2.VideoCapture(str(path))
    try:
        ok, image = capture.read() if capture.isOpened() else (False, None)
        if not ok:
            raise UsageError(
                f"cannot decode video {path} (expected a video OpenCV can read, e.g. .avi / .mp4)"
            )
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    if count < seq_length:
        raise UsageError(
            f"video {path} has {count} frames but seqinfo.ini says seqLength={seq_length}; pass the "
            "sequence's full video"
        )
    return image.shape[1], image.shape[0]


def _images_size(image_dir: Path, ext: str, length: int) -> tuple[int, int]:
    """(width, height) of the first frame; UsageError if any of frames 1..length is missing."""
    missing = [i for i in range(1, length + 1) if not (image_dir / f"{i:06d}{ext}").is_file()]
    if missing:
        raise UsageError(
            f"{image_dir}: {len(missing)} of {length} frames missing, first "
            f"{missing[0]:06d}{ext} (expected 000001{ext}... as in seqinfo imExt)"
        )
    return image_size(image_dir / f"000001{ext}")


def _scale(size: tuple[int, int], original: tuple[int, int], seqinfo: Path) -> float:
    """Frame pixels per annotation pixel; UsageError when the frames are not a uniform rescale of the original."""
    (w, h), (ow, oh) = size, original
    if abs((w / h) / (ow / oh) - 1) > ASPECT_TOLERANCE:
        raise UsageError(
            f"frames are {w}x{h} but {seqinfo} says {ow}x{oh}: a different aspect ratio, so the boxes "
            "cannot be scaled; use the sequence's own frames (or a uniformly resized copy)"
        )
    return w / ow
