"""The benchmark results store: schema, concurrent writers, corrupt files left untouched, accuracy records."""

from __future__ import annotations

import base64
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from toolkit.bench.stats import pack_samples
from toolkit.bench.store import SCHEMA_VERSION, BenchStore, record_accuracy
from toolkit.errors import UsageError

REPO = Path(__file__).resolve().parents[1]


def make_result(name: str = "m_int8.tflite", p50: float = 2.0, **extra) -> dict:
    """A result dict shaped like toolkit.bench.measure.measure() output (synthetic numbers)."""
    samples = np.full(50, p50, np.float32)
    return {
        "model": f"/models/{name}",
        "model_name": name,
        "model_sha256": "0" * 64,
        "family": name.split("_")[0],
        "format": "int8",
        "format_source": "name",
        "kind": None,
        "size_bytes": 1000,
        "threads": 1,
        "delegate": "xnnpack",
        "backend": "ai_edge_litert",
        "backend_version": "2.3.0",
        "warmup": 1,
        "count": 50,
        "seconds": None,
        "load_ms": 1.0,
        "first_ms": 3.0,
        "mean_ms": p50,
        "std_ms": 0.0,
        "min_ms": p50,
        "p50_ms": p50,
        "p90_ms": p50,
        "p99_ms": p50,
        "max_ms": p50,
        "throughput": 1000 / p50,
        "peak_rss_mb": 40.0,
        "baseline_rss_mb": 30.0,
        "throttled": False,
        "temperature_c": None,
        "input_source": "random",
        "inputs": [],
        "throttle_before": None,
        "throttle_after": None,
        "metrics": {},
        "samples_zlib_b64": base64.b64encode(pack_samples(samples)).decode(),
        **extra,
    }


def test_schema_and_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "bench.sqlite"
    with BenchStore(db) as store:
        session = store.add_session("pi", {"cpu_model": "x"}, "toolkit bench m")
        store.add_result(session, make_result(p50=2.0))
        store.add_result(session, make_result(p50=3.0))  # same configuration, newer
        store.add_result(session, make_result(p50=5.0, threads=2))
        latest = store.results(with_samples=True)
        every = store.results(latest=False)
    assert [r["p50_ms"] for r in latest] == [3.0, 5.0]
    assert len(every) == 3
    assert latest[0]["target"] == "pi" and latest[0]["host"] == {"cpu_model": "x"}
    assert latest[0]["model_path"] == "/models/m_int8.tflite"
    np.testing.assert_array_equal(latest[0]["samples"], np.full(50, 3.0, np.float32))
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_report_refuses_missing_database(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no benchmark database"):
        BenchStore(tmp_path / "none.sqlite", create=False)
    assert not (tmp_path / "none.sqlite").exists()


WRITER = """
import sys
sys.path.insert(0, {repo!r})
sys.path.insert(0, {tests!r})
from test_bench_store import make_result
from toolkit.bench.store import BenchStore
with BenchStore({db!r}) as store:
    session = store.add_session("w%s" % sys.argv[1], {{}}, "writer")
    for i in range(25):
        store.add_result(session, make_result(name="w%s_%d_int8.tflite" % (sys.argv[1], i), p50=1.0 + i))
"""


def test_concurrent_writers_do_not_corrupt(tmp_path: Path) -> None:
    db = tmp_path / "bench.sqlite"
    code = WRITER.format(repo=str(REPO), tests=str(REPO / "tests"), db=str(db))
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(i)], stderr=subprocess.PIPE, text=True)
        for i in range(5)
    ]  # all start at once, including the schema creation race
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 5, errors
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 125
    assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 5
    assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 1
    per_writer = conn.execute("SELECT target, COUNT(*) FROM results GROUP BY target").fetchall()
    assert sorted(per_writer) == [(f"w{i}", 25) for i in range(5)]
    conn.close()


@pytest.mark.parametrize(
    "content",
    [
        np.random.default_rng(1).bytes(8192),  # garbage
        b"SQLite format 3\x00" + np.random.default_rng(2).bytes(8192),  # right header, garbage pages
    ],
)
def test_corrupt_database_left_untouched(tmp_path: Path, content: bytes) -> None:
    db = tmp_path / "bench.sqlite"
    db.write_bytes(content)
    with pytest.raises(UsageError, match="left untouched"):
        BenchStore(db)
    assert db.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.sqlite"]  # no -wal / -shm left behind


def test_foreign_and_newer_databases_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    with pytest.raises(UsageError, match="not a toolkit benchmark database"):
        BenchStore(other)
    assert other.read_bytes() == before

    newer = tmp_path / "newer.sqlite"
    BenchStore(newer).close()
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(UsageError, match="schema version 99"):
        BenchStore(newer)


def test_record_accuracy_attaches_to_model_file(tmp_path: Path) -> None:
    from toolkit.fileio import sha256_file

    model = tmp_path / "m_int8.tflite"
    model.write_bytes(b"stand-in model bytes")  # only its hash matters here
    with BenchStore(tmp_path / "b.sqlite") as store:
        session = store.add_session("pi", {}, "")
        store.add_result(session, make_result(model_sha256=sha256_file(model)))
        store.add_result(session, make_result(name="other_int8.tflite", model_sha256="f" * 64))
        store.add_result(
            session, make_result(name="z_fp32.tflite", model_sha256="e" * 64, metrics={"top1": 0.75})
        )
        store.record_accuracy(model, "map50", 0.42, dataset="coco128")
    record_accuracy(model, "map50", 0.44, dataset="coco128", db=tmp_path / "b.sqlite")  # the newest wins
    with BenchStore(tmp_path / "b.sqlite") as store:
        rows = {r["model_name"]: r for r in store.results()}
        with pytest.raises(UsageError, match="model file not found"):
            store.record_accuracy(tmp_path / "missing.tflite", "top1", 0.1)
    assert (rows["m_int8.tflite"]["accuracy"], rows["m_int8.tflite"]["accuracy_metric"]) == (0.44, "map50")
    assert rows["other_int8.tflite"]["accuracy"] is None
    assert (rows["z_fp32.tflite"]["accuracy"], rows["z_fp32.tflite"]["accuracy_metric"]) == (0.75, "top1")


def test_an_immediate_lock_while_opening_is_retried(tmp_path: Path, monkeypatch) -> None:
    """SQLite reports some locks at once (no busy wait): opening retries them instead of failing the run."""
    real = BenchStore._check_tables
    calls = {"n": 0}

    def flaky(self):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise sqlite3.OperationalError("database is locked")
        return real(self)

    monkeypatch.setattr(BenchStore, "_check_tables", flaky)
    with BenchStore(tmp_path / "b.sqlite") as store:
        store.add_session("s", {}, "retry")
    assert calls["n"] >= 3


def test_a_lock_error_that_is_not_a_lock_is_not_retried(tmp_path: Path, monkeypatch) -> None:
    def broken(self):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(BenchStore, "_check_tables", broken)
    started = time.monotonic()
    with pytest.raises(Exception, match="I/O"):
        BenchStore(tmp_path / "b.sqlite")
    assert time.monotonic() - started < 5
