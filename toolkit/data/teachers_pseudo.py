"""The ``pseudo`` data SPEC: real frames labelled by the teachers (:mod:`toolkit.data.teachers`), cached on disk.

    pseudo:path=clips/street.mp4,every=10     every 10th frame of a video, labelled by both teachers
    pseudo:path=photos/,teacher=pascal        every image of a folder (recursive, sorted), PASCAL only

A source is labelled once: the street mask of each frame (:func:`~toolkit.data.teachers.street_labels`) and its
person boxes (:func:`~toolkit.data.teachers.person_boxes`; crowd blobs become ignore regions) are written under
``$TOOLKIT_HOME/cache/pseudo/<key>``, with the kept video frames as lossless PNGs (so a frame is read back without
seeking in the video). The key hashes the source (resolved path, each file's size and mtime), the selection
(``every``, ``limit``), the teacher files' sha256, the box rule and the source of ``toolkit/data/teachers*.py``:
changing any of them relabels, nothing else does. The folder is written under a temporary name and renamed when
complete, so an interrupted run leaves no half cache.

:func:`detection_samples` gives a :class:`~toolkit.data.detection_samples.Samples` (person boxes, crowd = ignore,
visibility 1), :func:`segmentation_samples` a :class:`~toolkit.data.segmentation_samples.SegSamples` (255 = ignore).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from toolkit.data import teachers
from toolkit.data.spec import DataSpec
from toolkit.errors import UsageError

if TYPE_CHECKING:
    from toolkit.data.detection_samples import Samples
    from toolkit.data.segmentation_samples import SegSamples

TEACHER_CHOICES = ("both", "pascal", "cityscapes")  # the SPEC's teacher= values; the first is the default
DEFAULT_EVERY = 10  # video: keep every n-th frame (neighbouring frames are near duplicates)
NUM_THREADS = 2  # interpreter threads per teacher while labelling
DONE = "labels.npz"  # the file whose presence marks a complete cache folder


@dataclass(frozen=True)
class BoxRule:
    """The :func:`~toolkit.data.teachers.person_boxes` settings used for pseudo boxes (part of the cache key)."""

    min_height: int = teachers.MIN_HEIGHT  # components shorter than this (px) are dropped
    min_pixels: int = teachers.MIN_PIXELS  # ...and so are those with fewer pixels
    crowd_aspect: float = teachers.CROWD_ASPECT  # wider than this x the height -> crowd (ignore region)


@dataclass(frozen=True)
class PseudoSource:
    """What a ``pseudo`` SPEC names, validated."""

    path: Path  # an image folder or a video file (resolved)
    video: bool  # True for a video file
    teacher: str  # both | pascal | cityscapes
    every: int  # video: keep every n-th frame
    limit: int | None  # label at most this many frames


def parse_source(spec: DataSpec) -> PseudoSource:
    """``path``, ``teacher``, ``every`` and ``limit`` of a pseudo SPEC; a one-line UsageError for bad values."""
    raw = spec.get("path")
    if not raw:
        raise UsageError(f"data '{spec}': pseudo needs path=... (an image folder or a video file)")
    path = Path(raw).expanduser()
    if not path.exists():
        raise UsageError(f"data '{spec}': {path} does not exist (give an image folder or a video file)")
    teacher = spec.get("teacher", TEACHER_CHOICES[0])
    if teacher not in TEACHER_CHOICES:
        raise UsageError(
            f"data '{spec}': unknown teacher '{teacher}' (choose from {', '.join(TEACHER_CHOICES)})"
        )
    every, limit = spec.get_int("every", DEFAULT_EVERY), spec.get_int("limit")
    if every < 1:
        raise UsageError(f"data '{spec}': every must be >= 1 (keep every n-th video frame), got {every}")
    if limit is not None and limit < 1:
        raise UsageError(f"data '{spec}': limit must be >= 1, got {limit}")
    if path.is_dir() and spec.get("every") is not None:
        raise UsageError(
            f"data '{spec}': every= selects video frames; {path} is an image folder (drop every=)"
        )
    return PseudoSource(path.resolve(), not path.is_dir(), teacher, every, limit)


# ---------------------------------------------------------------------------------------------- sample sets


def detection_samples(spec: DataSpec) -> Samples:
    """The person boxes of a pseudo SPEC as a :class:`~toolkit.data.detection_samples.Samples` (crowd = ignore)."""
    from toolkit.data.detection_samples import PERSON, Samples
    from toolkit.data.image_folder import read_rgb
    from toolkit.data.records import DetectionRecord

    source = parse_source(spec)
    folder, images, labels = labelled(source)
    starts = np.concatenate([[0], np.cumsum(labels["counts"])])
    records = []
    for i, (path, (h, w)) in enumerate(zip(images, labels["sizes"].tolist(), strict=True)):
        boxes, crowd = labels["boxes"][starts[i] : starts[i + 1]], labels["crowd"][starts[i] : starts[i + 1]]
        records.append(
            DetectionRecord(path, w, h, boxes, np.full(len(boxes), PERSON, np.int64), image_id=i, crowd=crowd)
        )
    return Samples(
        records,
        [np.ones(len(r.boxes), np.float32) for r in records],
        lambda i: read_rgb(images[i]),
        _describe(spec, source, folder, len(images)),
    )


def segmentation_samples(spec: DataSpec) -> SegSamples:
    """The street masks of a pseudo SPEC as a :class:`~toolkit.data.segmentation_samples.SegSamples` (255 = ignore)."""
    from toolkit.data.image_folder import read_rgb
    from toolkit.data.masks import read_mask
    from toolkit.data.segmentation_samples import SegSamples

    source = parse_source(spec)
    folder, images, _ = labelled(source)

    def load(i: int) -> tuple[np.ndarray, np.ndarray]:
        return read_rgb(images[i]), read_mask(folder / "masks" / f"{i:06d}.png")

    return SegSamples(
        [_name(source, i, p) for i, p in enumerate(images)],
        load,
        _describe(spec, source, folder, len(images)),
    )


def _name(source: PseudoSource, index: int, image: Path) -> str:
    """``clip.mp4/frame000120`` (the frame number in the video) or the image's path inside the folder."""
    return (
        f"{source.path.name}/frame{index * source.every:06d}"
        if source.video
        else str(image.relative_to(source.path))
    )


def _describe(spec: DataSpec, source: PseudoSource, folder: Path, count: int) -> dict[str, Any]:
    rule = BoxRule()
    return {
        "source": "pseudo",
        "spec": str(spec),
        "path": str(source.path),
        "teacher": source.teacher,
        **({"every": source.every} if source.video else {}),
        "frames": count,
        "cache": str(folder),
        "rule": f"teacher person components >= {rule.min_height} px tall and {rule.min_pixels} px; wider than "
        f"{rule.crowd_aspect:g} x their height are crowd (ignore) boxes, except people cut off by the "
        f"bottom border up to {teachers.CUT_OFF_ASPECT:g} x",
    }


# ---------------------------------------------------------------------------------------------- cache


def cache_root() -> Path:
    from toolkit.paths import state_dir

    return state_dir() / "cache" / "pseudo"


def labelled(source: PseudoSource) -> tuple[Path, list[Path], dict[str, np.ndarray]]:
    """(cache folder, image file per frame, labels: boxes (M, 4), crowd (M,), counts (K,), sizes (K, 2) h w).

    Labels the source first when its cache folder is missing (see the module docstring)."""
    files = [] if source.video else _image_files(source.path)
    if not source.video and source.limit is not None:
        files = files[: source.limit]
    key_src = json.dumps(_key(source, files), sort_keys=True)
    folder = cache_root() / hashlib.sha256(key_src.encode()).hexdigest()[:20]
    if not (folder / DONE).is_file():
        _write_cached(folder, key_src, source, files)
    with np.load(folder / DONE) as npz:
        labels = {k: npz[k] for k in npz.files}
    images = files or [folder / "frames" / f"{i:06d}.png" for i in range(len(labels["counts"]))]
    return folder, images, labels


def _key(source: PseudoSource, files: list[Path]) -> dict[str, Any]:
    def stamp(path: Path) -> list[Any]:
        stat = path.stat()
        return [str(path.relative_to(source.path)) if files else path.name, stat.st_size, stat.st_mtime_ns]

    names = ("pascal", "cityscapes") if source.teacher == "both" else (source.teacher,)
    return {
        "path": str(source.path),
        "files": [stamp(f) for f in files] if files else [stamp(source.path)],
        "video": source.video,
        "every": source.every if source.video else None,
        "limit": source.limit,
        "teachers": {n: _sha256(teachers.teacher_path(n)) for n in names},
        "rule": asdict(BoxRule()),
        "code": _code_hash(),
    }


@functools.lru_cache(maxsize=8)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    stat = path.stat()
    return _sha256_cached(str(path), stat.st_size, stat.st_mtime_ns)


def _code_hash() -> str:
    digest = hashlib.sha256()
    for file in sorted(Path(teachers.__file__).parent.glob("teachers*.py")):
        digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()


def _image_files(folder: Path) -> list[Path]:
    from toolkit.data.image_folder import IMAGE_EXTENSIONS

    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not files:
        raise UsageError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder or below")
    return files


def _write_cached(folder: Path, key_src: str, source: PseudoSource, files: list[Path]) -> None:
    """Label every frame into a temporary folder, then rename it to ``folder`` (a concurrent writer may win)."""
    from toolkit.data.sample_sets import publish_folder

    publish_folder(folder, key_src, DONE, lambda tmp: _label_frames(tmp, source, _frames(source, files)))


def _frames(source: PseudoSource, files: list[Path]) -> Iterator[tuple[np.ndarray, bool]]:
    """(uint8 RGB frame, True when it must be stored as a PNG because it comes from a video) per kept frame.

    A video is opened here, before any teacher is loaded, so an unreadable file fails at once."""
    from toolkit.data.image_folder import read_rgb

    if not source.video:
        return ((read_rgb(file), False) for file in files)
    capture = cv2.VideoCapture(str(source.path))
    if not capture.isOpened():
        capture.release()
        raise UsageError(f"{source.path}: not an image folder and not a video OpenCV can open")
    return _video_frames(capture, source)


def _video_frames(capture: cv2.VideoCapture, source: PseudoSource) -> Iterator[tuple[np.ndarray, bool]]:
    try:
        kept, index = 0, 0
        while source.limit is None or kept < source.limit:
            if index % source.every:  # grab without decoding the frames we skip
                ok = capture.grab()
            else:
                ok, bgr = capture.read()
                if ok:
                    kept += 1
                    yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), True
            if not ok:
                break
            index += 1
    finally:
        capture.release()


def _label_frames(folder: Path, source: PseudoSource, frames: Iterator[tuple[np.ndarray, bool]]) -> None:
    rule = BoxRule()
    (folder / "masks").mkdir()
    boxes, crowd, counts, sizes = [], [], [], []
    names = ("pascal", "cityscapes") if source.teacher == "both" else (source.teacher,)
    with contextlib.ExitStack() as stack:
        models = {n: stack.enter_context(teachers.Teacher(n, num_threads=NUM_THREADS)) for n in names}
        for i, (image, store) in enumerate(frames):
            mask = teachers.street_labels(
                image, pascal=models.get("pascal"), cityscapes=models.get("cityscapes")
            )
            b, c = teachers.person_boxes(mask == teachers.PERSON, **asdict(rule))
            _write_png(folder / "masks" / f"{i:06d}.png", mask)
            if store:
                _write_png(folder / "frames" / f"{i:06d}.png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            boxes.append(b)
            crowd.append(c)
            counts.append(len(b))
            sizes.append(image.shape[:2])
    if not counts:
        raise UsageError(f"{source.path}: no frames could be read (an empty or unreadable video)")
    np.savez(
        folder / DONE,
        boxes=np.concatenate(boxes).astype(np.float32),
        crowd=np.concatenate(crowd),
        counts=np.asarray(counts, np.int64),
        sizes=np.asarray(sizes, np.int64),
    )


def _write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise UsageError(f"cannot write {path} (disk full or not writable?)")
