"""``bench --db`` on a full disk (issue 15, finding 6): it says the disk is full (exit 2, one line) instead of calling
a new, empty database "damaged", and leaves no empty database behind; an existing database keeps its results.

A full disk is simulated with a small file size limit (RLIMIT_FSIZE, SIGXFSZ ignored) in the child process, where
SQLite reports "disk I/O error"; a real ENOSPC ("database or disk is full") comes from a small tmpfs where this
process may mount one.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, CliResult, assert_one_line_error

from toolkit.bench.store import BenchStore
from toolkit.errors import UsageError

MODEL = REPO / "models" / "behaviour" / "behaviour_int8.tflite"


def _size_limited(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _bench(db: Path, limit: int | None = None) -> CliResult:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "toolkit",
            "bench",
            str(MODEL),
            "--db",
            str(db),
            "--seconds",
            "0.2",
            "--threads",
            "1",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_size_limited(limit) if limit is not None else None,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.parametrize("limit", [0, 4096, 20_000])
def test_new_database_on_a_full_disk_is_exit_2_and_leaves_no_file(tmp_path, limit):
    db = tmp_path / "db" / "bench.sqlite"
    result = _bench(db, limit=limit)
    assert_one_line_error(result, 2, "no space left on device writing")
    assert "damaged" not in result.stderr
    assert list(db.parent.iterdir()) == []


def test_existing_database_on_a_full_disk_keeps_its_results(tmp_path):
    db = tmp_path / "bench.sqlite"
    with BenchStore(db) as store:
        store.add_session("here", {"cpu": "test"})
    size_before = db.stat().st_size
    result = _bench(db, limit=4096)
    assert_one_line_error(result, 2, "no space left on device writing")
    assert "damaged" not in result.stderr
    assert db.stat().st_size >= size_before
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1
    finally:
        conn.close()


def test_sqlite_full_is_reported_as_a_full_disk_not_damage(tmp_path):
    with BenchStore(tmp_path / "bench.sqlite") as store:
        error = store._db_error(sqlite3.OperationalError("database or disk is full"))
        assert isinstance(error, UsageError) and "no space left on device" in str(error)
        damaged = store._db_error(sqlite3.DatabaseError("database disk image is malformed"))
        assert "damaged" in str(damaged)
        io_error = store._db_error(
            sqlite3.OperationalError("disk I/O error")
        )  # plenty of room here: not full
        assert "no space left" not in str(io_error) and "disk I/O error" in str(io_error)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs at tmp_path/small, filled up; skipped (with the reason) where mounting is not allowed."""
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({proc.stderr.strip() or 'not root'}); the RLIMIT_FSIZE tests cover it"
        )
    try:
        fd = os.open(mount / "fill", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:  # ENOSPC: full
            pass
        finally:
            os.close(fd)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_new_database_on_a_real_full_disk_is_not_called_damaged(small_tmpfs):
    result = _bench(small_tmpfs / "bench.sqlite")
    assert_one_line_error(result, 2, "no space left on device writing")
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["fill"]


def test_sigkill_during_bench_keeps_every_stored_result(tmp_path):
    """kill -9 of bench while it measures and stores (several models in a row): the database passes SQLite's
    integrity check, the results stored before keep their bytes, and the next bench appends to it."""
    import shutil
    import time

    db = tmp_path / "bench.sqlite"
    assert _bench(db).returncode == 0
    conn = sqlite3.connect(db)
    before = conn.execute("SELECT * FROM results ORDER BY id").fetchall()
    conn.close()
    models = []
    for name in "abcdef":
        models.append(tmp_path / f"{name}.tflite")
        shutil.copy(MODEL, models[-1])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "toolkit",
            "bench",
            *map(str, models),
            "--db",
            str(db),
            "--seconds",
            "1",
            "--threads",
            "1",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            conn = sqlite3.connect(db, timeout=5)
            try:
                if conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] > len(before):
                    break  # at least one new result is in: the next write is close
            finally:
                conn.close()
            time.sleep(0.05)
        assert proc.poll() is None, "bench finished before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # bench and its measuring worker
        proc.wait(timeout=30)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        after = conn.execute("SELECT * FROM results ORDER BY id").fetchall()
        assert after[: len(before)] == before and len(after) > len(before)
    finally:
        conn.close()
    assert _bench(db).returncode == 0
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == len(after) + 1
    finally:
        conn.close()
