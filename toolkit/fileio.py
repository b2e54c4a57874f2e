"""Atomic file output (a result is either complete on disk or absent, never half-written) and the provenance
helpers every artifact's manifest uses (hashes, library versions).

Temporary files and folders carry the writing process's id in their names (``.NAME.partial-PID-XXXX``,
``toolkit-convert-PID-XXXX``): a process killed with SIGKILL cannot remove its own, so the next writer in the same
folder removes those whose process is gone (:func:`sweep_stale`). A full disk (ENOSPC, EDQUOT, or EFBIG from a
file size limit) becomes one clear :func:`no_space_error` instead of an OSError.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from toolkit.errors import UsageError

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# Native libraries report the errno's text only: TensorFlow "...; No space left on device", "...; File too large".
_DISK_FULL_TEXTS = tuple(os.strerror(code) for code in sorted(DISK_FULL_ERRNOS)) + (
    "database or disk is full",
)
LOW_SPACE_BYTES = 1 << 20  # less room than this left for a file counts as a full disk (see space_left)
_swept: set[tuple[str, str]] = set()  # (folder, prefix) pairs already swept by this process
_swept_lock = threading.Lock()


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` says the disk (or a quota, or the file size limit) is full."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        return True
    return any(text in str(exc) for text in _DISK_FULL_TEXTS)


def no_space_error(
    path: str | os.PathLike[str], what: str = "", hint: str = "free some space or write to another disk"
) -> UsageError:
    """The one-line UsageError (exit 2) for a write that failed on a full disk, naming ``path``; ``what`` goes
    before it ("recording failed: "), ``hint`` after it."""
    return UsageError(
        f"{what}no space left on device writing {path} (disk full, quota or file size limit "
        f"reached); nothing was left half-written: {hint}"
    )


def space_left(path: str | os.PathLike[str]) -> int:
    """Bytes that ``path`` (an existing file, or a file to create) can still grow by: the smaller of the free space
    of its file system and what the process's file size limit (``ulimit -f``, RLIMIT_FSIZE) allows."""
    target = Path(path)
    folder = target if target.is_dir() else target.parent
    try:
        stats = os.statvfs(folder)
        free = stats.f_bavail * stats.f_frsize
    except (OSError, AttributeError):  # a missing folder; no statvfs (Windows)
        free = 1 << 62
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return free
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY:
        size = target.stat().st_size if target.is_file() else 0
        free = min(free, max(limit - size, 0))
    return free


def pid_alive(pid: int) -> bool:
    """True while a process with id ``pid`` exists (it may belong to another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


PARTIAL_PATTERN = r"\..+\.partial-(\d+)-"  # .NAME.partial-PID-XXXX: the temporary files of partial_path


def sweep_stale(folder: str | os.PathLike[str], pattern: str, once: bool = True) -> list[Path]:
    """Remove the files / folders in ``folder`` whose names match the regex ``pattern`` (its group 1 is the pid of
    the process that made them) when that process no longer exists: leftovers of a SIGKILL, which no handler can
    catch. ``once``: each (folder, pattern) is swept once per process. Returns what was removed."""
    key = (os.path.abspath(folder), pattern)
    with _swept_lock:
        if once and key in _swept:
            return []
        _swept.add(key)
    matcher = re.compile(pattern)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = matcher.match(entry.name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or pid_alive(pid):
            continue
        path = Path(entry.path)
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


def partial_path(path: str | os.PathLike[str], suffix: str | None = None) -> Path:
    """Create an empty private temporary file beside ``path`` (``.NAME.partial-PID-XXXX``) and return its path;
    the stale ones of dead processes in that folder are removed first. ``suffix`` defaults to ``path``'s own (some
    writers, e.g. cv2.VideoWriter, choose the format from it)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target.parent, PARTIAL_PATTERN)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.name}.partial-{os.getpid()}-",
        suffix=suffix if suffix is not None else target.suffix,
        dir=target.parent,
    )
    os.close(fd)
    return Path(name)


def commit_partial(tmp: Path, target: Path) -> None:
    """Flush ``tmp`` to disk, give it the mode a plain open() would have and rename it over ``target``."""
    if tmp.is_file():
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files
        with open(tmp, "rb") as handle:  # a delayed-allocation or network file system reports ENOSPC here
            os.fsync(handle.fileno())
    os.replace(tmp, target)


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not possible everywhere (e.g. Windows); the renames are still atomic
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds.

    ``suffix`` is the temporary file's suffix (see :func:`partial_path`). On a full disk the block's OSError
    becomes :func:`no_space_error`; on any failure the temporary file is removed.
    """
    with AtomicFiles() as files:
        yield files.add(path, suffix)


class AtomicFiles:
    """Files that appear together or not at all, e.g. a model and its manifest; use as a context manager.

    :meth:`add` gives a temporary path beside each target. When the block succeeds they are renamed into place in
    the order added, the ``manifest`` last and its old version removed before the first rename: whatever stops
    the renames (a crash, SIGKILL, a full disk), a manifest on disk always describes the files beside it -- the old
    set, files without a manifest, or the new set, never a manifest beside another model. When the block fails,
    every temporary file is removed and the targets are left as they were.
    """

    def __init__(self, manifest: str | os.PathLike[str] | None = None) -> None:
        self.manifest = Path(manifest) if manifest is not None else None
        self._manifest_tmp: Path | None = None
        self._pairs: list[tuple[Path, Path]] = []

    @property
    def manifest_tmp(self) -> Path:
        """The temporary path to write the manifest to (inside the block of an AtomicFiles with a manifest)."""
        if self._manifest_tmp is None:
            raise ValueError("this AtomicFiles has no manifest, or its block has not started")
        return self._manifest_tmp

    def add(self, path: str | os.PathLike[str], suffix: str | None = None) -> Path:
        """A temporary path that replaces ``path`` when the block succeeds (renamed in the order added)."""
        tmp = self._partial(Path(path), suffix)
        self._pairs.append((tmp, Path(path)))
        return tmp

    def __enter__(self) -> AtomicFiles:
        if self.manifest is not None:
            self._manifest_tmp = self._partial(self.manifest, None)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc_type is None:
            try:
                self._commit()
            except BaseException as error:
                self._discard()
                if isinstance(error, OSError) and is_disk_full(error):
                    raise no_space_error(self._target_of(error)) from None
                raise
            return
        self._discard()
        if isinstance(exc, OSError) and is_disk_full(exc):
            raise no_space_error(self._target_of(exc)) from None

    @staticmethod
    def _partial(target: Path, suffix: str | None) -> Path:
        try:
            return partial_path(target, suffix)
        except OSError as exc:
            if is_disk_full(exc):
                raise no_space_error(target) from None
            raise

    def _all_pairs(self) -> list[tuple[Path, Path]]:
        last = [(self._manifest_tmp, self.manifest)] if self._manifest_tmp and self.manifest else []
        return self._pairs + last

    def _target_of(self, exc: OSError) -> Path | str:
        """The target a failed write was for (an OSError names the temporary file, or another file)."""
        pairs = self._all_pairs()
        for tmp, target in pairs:
            if exc.filename is not None and Path(exc.filename) == tmp:
                return target
        return exc.filename or (pairs[0][1] if pairs else "the output")

    def _commit(self) -> None:
        if self.manifest is not None and self._manifest_tmp is not None and self._manifest_tmp.is_file():
            with open(
                self._manifest_tmp, "rb"
            ) as handle:  # flushed before anything moves: a full disk fails here
                os.fsync(handle.fileno())
            self.manifest.unlink(missing_ok=True)  # never a moment with the old manifest beside a new model
        pairs = self._all_pairs()
        for tmp, target in pairs:
            commit_partial(tmp, target)
        for folder in {target.parent for _, target in pairs}:
            _fsync_folder(folder)

    def _discard(self) -> None:
        for tmp, _ in self._all_pairs():
            with contextlib.suppress(OSError):
                if tmp.is_dir() and not tmp.is_symlink():
                    shutil.rmtree(tmp)
                else:
                    tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def temp_folder(prefix: str) -> Iterator[Path]:
    """A private temporary folder ``$TMPDIR/PREFIX-PID-XXXX`` removed when the block ends; folders of the same
    prefix left by dead processes (SIGKILL) are removed first."""
    root = Path(tempfile.gettempdir())
    sweep_stale(root, re.escape(prefix) + r"-(\d+)-")
    with tempfile.TemporaryDirectory(prefix=f"{prefix}-{os.getpid()}-") as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises SystemExit(143) (a second one kills at once), so that ``finally`` blocks
    and the atomic writers remove their temporary files as they do on Ctrl-C's KeyboardInterrupt. Only in the main
    thread and where SIGTERM has its default action (a caller's own handler is kept)."""
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def on_term(signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _read_umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it; put it straight back (once, at import: not
    os.umask(mask)  # thread-safe, and the pipeline writes files from worker threads)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[BinaryIO]:
    """Open a temporary file for writing; it replaces ``path`` when the block exits without error."""
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def json_text(obj: Any) -> str:
    """``obj`` as indented JSON text with a final newline (numpy values and paths as plain JSON)."""
    return json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    text = json_text(obj)
    with atomic_open(path, "w") as handle:
        handle.write(text)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


@contextlib.contextmanager
def captured_fd2() -> Iterator[list[str]]:
    """Send file descriptor 2 to a temp file while native code runs (LiteRT / TensorFlow C++ logging ignores
    Python's sys.stderr); yield a list that holds the captured text once the block ends."""
    sink: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:  # pragma: no cover - no fd 2
        yield sink
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield sink
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            sink.append(tmp.read().decode("utf-8", "replace"))


def to_jsonable(obj: Any) -> Any:
    """Round-trip through JSON so numpy scalars/arrays become plain Python values."""
    return json.loads(json.dumps(obj, default=_json_default))


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


DEFAULT_LIBRARIES = ("tensorflow", "keras", "ai-edge-litert", "numpy", "opencv-python-headless")


def library_versions(dists: tuple[str, ...] = DEFAULT_LIBRARIES) -> dict[str, str]:
    """``{"python": ..., dist: version}`` for the installed ones of ``dists`` (a manifest's "libraries")."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in dists:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def check_writable(path: str | os.PathLike[str] | None, flag: str) -> None:
    """UsageError (exit 2) before any work when ``path`` cannot be written: a directory, a file where a folder is
    needed, or a nearest existing folder that is not writable (the writers create missing folders)."""
    if path is None:
        return
    target = Path(path).expanduser()
    if target.is_dir():
        raise UsageError(f"{flag} {target} is a directory; give a file name")
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {target}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{flag} {target}: folder {parent} is not writable")
