"""The results store: one embedded SQLite database that every ``toolkit bench`` run appends to.

Default location: ``toolkit.paths.state_dir() / "bench.sqlite"`` (``$TOOLKIT_HOME/bench.sqlite``, else
``~/.local/share/edge-toolkit/bench.sqlite``); ``--db PATH`` chooses another.

Safety: WAL journal + a 30 s busy timeout + one ``BEGIN IMMEDIATE`` transaction per result, so several processes
can append at once and a run interrupted with Ctrl-C keeps every result committed before it. A file that is not
an SQLite database is refused before SQLite touches it (the header is checked first and the first statement is a
read), so a corrupt file is left byte-for-byte as it was. ``schema_version`` holds the layout version.

Accuracy: ``record_accuracy()`` attaches an evaluation result (e.g. from ``toolkit eval``) to a model file by its
SHA-256; the report shows the latest one beside every benchmark row of that exact file (it takes precedence over a
metric found in the model's manifest "metrics" at benchmark time, see ACCURACY_KEYS).
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError, UsageError, one_line
from toolkit.paths import state_dir

SCHEMA_VERSION = 1
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000
# Metric names looked for, in this order, when a model manifest's "metrics" names several.
ACCURACY_KEYS = ("accuracy", "top1", "map50_95", "mAP50-95", "map", "mAP", "miou", "mIoU", "ade")

RESULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("model_path", "TEXT"),
    ("model_name", "TEXT NOT NULL"),
    ("model_sha256", "TEXT NOT NULL"),
    ("family", "TEXT NOT NULL"),
    ("format", "TEXT NOT NULL"),
    ("format_source", "TEXT"),
    ("kind", "TEXT"),
    ("size_bytes", "INTEGER"),
    ("threads", "INTEGER NOT NULL"),
    ("delegate", "TEXT NOT NULL"),
    ("backend", "TEXT"),
    ("backend_version", "TEXT"),
    ("warmup", "INTEGER"),
    ("count", "INTEGER"),
    ("seconds", "REAL"),
    ("load_ms", "REAL"),
    ("first_ms", "REAL"),
    ("mean_ms", "REAL"),
    ("std_ms", "REAL"),
    ("min_ms", "REAL"),
    ("p50_ms", "REAL"),
    ("p90_ms", "REAL"),
    ("p99_ms", "REAL"),
    ("max_ms", "REAL"),
    ("throughput", "REAL"),
    ("peak_rss_mb", "REAL"),
    ("baseline_rss_mb", "REAL"),
    ("throttled", "INTEGER"),
    ("temperature_c", "REAL"),
    ("input_source", "TEXT"),
    ("accuracy", "REAL"),
    ("accuracy_metric", "TEXT"),
)
DETAIL_KEYS = ("inputs", "throttle_before", "throttle_after", "metrics")

_SCHEMA = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "CREATE TABLE sessions (id INTEGER PRIMARY KEY, created_utc TEXT NOT NULL, target TEXT NOT NULL, "
    "host_json TEXT NOT NULL, command TEXT, toolkit_version TEXT)",
    "CREATE TABLE results (id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL REFERENCES sessions(id), "
    "created_utc TEXT NOT NULL, target TEXT NOT NULL, "
    + ", ".join(f"{name} {kind}" for name, kind in RESULT_COLUMNS)
    + ", detail_json TEXT, samples BLOB)",
    "CREATE INDEX results_model ON results(model_sha256, target)",
    "CREATE TABLE accuracy (id INTEGER PRIMARY KEY, created_utc TEXT NOT NULL, model_sha256 TEXT NOT NULL, "
    "model_name TEXT, metric TEXT NOT NULL, value REAL NOT NULL, dataset TEXT, detail_json TEXT)",
    "CREATE INDEX accuracy_model ON accuracy(model_sha256)",
)


def default_db_path() -> Path:
    """Where the benchmark database lives unless ``--db`` says otherwise: ``bench.sqlite`` in the state folder
    (``$TOOLKIT_HOME``, else ``~/.local/share/edge-toolkit``)."""
    return state_dir() / "bench.sqlite"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def accuracy_from_metrics(metrics: dict[str, Any]) -> tuple[float | None, str | None]:
    """Pick the headline metric from a metrics dict: a key of ACCURACY_KEYS, or the only numeric value."""
    numeric = {
        k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    for key in ACCURACY_KEYS:
        if key in numeric:
            return float(numeric[key]), key
    if len(numeric) == 1:
        key, value = next(iter(numeric.items()))
        return float(value), key
    return None, None


class BenchStore:
    """An open results database; use as a context manager. ``create=False`` refuses a missing file."""

    def __init__(self, path: str | Path | None = None, create: bool = True) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        if self.path.is_dir():
            raise UsageError(
                f"--db {self.path} is a directory; give a file path such as {self.path}/bench.sqlite"
            )
        created = not self.path.exists()
        if created:
            if not create:
                raise UsageError(
                    f"no benchmark database at {self.path}; run 'toolkit bench MODEL.tflite' first "
                    "or pass --db"
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
        else:
            self._check_header()
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as exc:
            raise UsageError(f"cannot open benchmark database {self.path}: {exc}") from None
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._open_retrying()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            error = self._db_error(exc)
            if created and self._disk_full(exc):
                self._remove_empty()
            raise error from None
        except BaseException:
            self.conn.close()
            raise

    def _open_retrying(self) -> None:
        """Check the tables, switch to WAL and create the schema; retried while another process holds a lock.

        SQLite answers "database is locked" at once, without waiting out the busy timeout, where waiting could
        deadlock: two new writers racing to switch a fresh file to WAL, or a reader upgrading in rollback mode.
        Those are retried here with a capped backoff until the same 30 s have passed."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        delay = 0.02
        while True:
            try:
                # Reads first: a damaged, foreign or newer file is refused before anything is written to it.
                self._check_tables()
                self.conn.execute("PRAGMA journal_mode = WAL")
                # WAL + NORMAL: durable at checkpoints, never corrupt.
                self.conn.execute("PRAGMA synchronous = NORMAL")
                self._init_schema()
                return
            except sqlite3.OperationalError as exc:
                text = str(exc).lower()
                if not ("locked" in text or "busy" in text) or time.monotonic() + delay > deadline:
                    raise
                if self.conn.in_transaction:
                    self.conn.rollback()
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def _check_header(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                head = handle.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise UsageError(f"cannot read benchmark database {self.path}: {exc.strerror}") from None
        if head and head != SQLITE_HEADER:
            raise UsageError(
                f"{self.path} is not an SQLite database (corrupt or another kind of file); it was left "
                "untouched: move it away or pass --db NEW_PATH"
            )

    def _corrupt(self, exc: Exception) -> UsageError:
        return UsageError(
            f"benchmark database {self.path} is damaged ({one_line(str(exc), 120)}); it was left "
            "untouched: move it away or pass --db NEW_PATH"
        )

    def _check_tables(self) -> bool:
        """Refuse a database that is not ours or is newer than this code; True when the schema exists."""
        tables = {row[0] for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_version" in tables:
            row = self.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            version = row[0] if row else None
            if version is None or version > SCHEMA_VERSION:
                raise UsageError(
                    f"benchmark database {self.path} has schema version {version}; this toolkit "
                    f"reads version {SCHEMA_VERSION}: upgrade edge-toolkit or pass --db NEW_PATH"
                )
            return True
        if tables:
            raise UsageError(
                f"{self.path} is an SQLite database but not a toolkit benchmark database "
                f"(tables: {', '.join(sorted(tables))[:120]}); pass --db NEW_PATH"
            )
        return False

    def _init_schema(self) -> None:
        with self.transaction():
            if self._check_tables():  # checked again under the write lock: another writer may have created it
                return
            for statement in _SCHEMA:
                self.conn.execute(statement)
            self.conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front (waits up to the busy timeout)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- writing --------------------------------------------------------------------------------------------------
    def add_session(
        self, target: str, host: dict[str, Any], command: str = "", toolkit_version: str = ""
    ) -> int:
        """One ``toolkit bench`` invocation on one target; returns its id."""
        with self._guard(), self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO sessions (created_utc, target, host_json, command, toolkit_version) VALUES (?,?,?,?,?)",
                (_now(), target, json.dumps(host, sort_keys=True), command, toolkit_version),
            )
            return int(cur.lastrowid)

    def add_result(self, session_id: int, result: dict[str, Any]) -> int:
        """Append one measured configuration (the dict made by toolkit.bench.measure.measure); returns its id."""
        row = {name: result.get(name) for name, _ in RESULT_COLUMNS}
        row["model_path"] = result.get("model_path") or result.get("model")
        row["throttled"] = int(bool(result.get("throttled")))
        if row["accuracy"] is None:
            row["accuracy"], row["accuracy_metric"] = accuracy_from_metrics(result.get("metrics") or {})
        detail = {key: result.get(key) for key in DETAIL_KEYS}
        samples = base64.b64decode(result["samples_zlib_b64"]) if result.get("samples_zlib_b64") else None
        with self._guard(), self.transaction() as conn:
            target = conn.execute("SELECT target FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if target is None:
                raise UsageError(f"no benchmark session {session_id} in {self.path}")
            names = ["session_id", "created_utc", "target", *row, "detail_json", "samples"]
            values = [session_id, _now(), target[0], *row.values(), json.dumps(detail), samples]
            cur = conn.execute(
                f"INSERT INTO results ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", values
            )
            return int(cur.lastrowid)

    def record_accuracy(
        self,
        model: str | Path,
        metric: str,
        value: float,
        dataset: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Attach an accuracy figure to the model file ``model`` (matched by SHA-256); returns the row id."""
        from toolkit.fileio import sha256_file

        path = Path(model)
        if not path.is_file():
            raise UsageError(f"model file not found: {path}")
        with self._guard(), self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO accuracy (created_utc, model_sha256, model_name, metric, value, dataset, detail_json) "
                "VALUES (?,?,?,?,?,?,?)",
                (
                    _now(),
                    sha256_file(path),
                    path.name,
                    metric,
                    float(value),
                    dataset,
                    json.dumps(detail or {}),
                ),
            )
            return int(cur.lastrowid)

    # -- reading --------------------------------------------------------------------------------------------------
    def results(
        self, target: str | None = None, latest: bool = True, with_samples: bool = False
    ) -> list[dict]:
        """Stored results, oldest first. ``latest`` keeps the newest per (model file, target, threads, delegate).

        Each dict has the RESULT_COLUMNS plus id, target, created_utc, host (the session's fingerprint), detail,
        accuracy/accuracy_metric (the latest record_accuracy row for that file, else the manifest's metric) and, with
        ``with_samples``, ``samples`` (a float32 numpy array of per-run milliseconds).
        """
        from toolkit.bench.stats import unpack_samples

        columns = [
            "r.id",
            "r.target",
            "r.created_utc",
            *(f"r.{n}" for n, _ in RESULT_COLUMNS),
            "r.detail_json",
            "s.host_json",
        ] + (["r.samples"] if with_samples else [])
        sql = f"SELECT {', '.join(columns)} FROM results r JOIN sessions s ON s.id = r.session_id"
        params: tuple[Any, ...] = ()
        if target is not None:
            sql += " WHERE r.target = ?"
            params = (target,)
        with self._guard():
            rows = self.conn.execute(sql + " ORDER BY r.id", params).fetchall()
            accuracy = {
                sha: (value, metric)
                for sha, value, metric in self.conn.execute(
                    "SELECT model_sha256, value, metric FROM accuracy ORDER BY id"
                )
            }
        names = [c.split(".", 1)[1] for c in columns]
        out: dict[tuple, dict] = {}
        for index, values in enumerate(rows):
            record = dict(zip(names, values, strict=True))
            record["detail"] = json.loads(record.pop("detail_json") or "{}")
            record["host"] = json.loads(record.pop("host_json") or "{}")
            if with_samples:
                record["samples"] = unpack_samples(record["samples"])
            if record["model_sha256"] in accuracy:  # an evaluation of this exact file beats manifest metrics
                record["accuracy"], record["accuracy_metric"] = accuracy[record["model_sha256"]]
            key = (record["model_sha256"], record["target"], record["threads"], record["delegate"])
            out[key if latest else (index,)] = record
        return sorted(out.values(), key=lambda r: r["id"])

    def targets(self) -> list[str]:
        """The distinct target names that have results, sorted."""
        with self._guard():
            return [
                row[0] for row in self.conn.execute("SELECT DISTINCT target FROM results ORDER BY target")
            ]

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise self._db_error(exc) from None

    def _disk_full(self, exc: sqlite3.DatabaseError) -> bool:
        """SQLITE_FULL, or an I/O error where the disk (or the file size limit) has no room left: SQLite reports
        EFBIG and some ENOSPC cases as a plain "disk I/O error"."""
        from toolkit.fileio import LOW_SPACE_BYTES, is_disk_full, space_left

        if is_disk_full(exc) or getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":
            return True
        if "disk I/O error" not in str(exc):
            return False
        return (
            min(space_left(self.path.with_name(self.path.name + suffix)) for suffix in ("", "-wal", "-shm"))
            < LOW_SPACE_BYTES
        )

    def _remove_empty(self) -> None:
        """Remove the database this process was creating when the disk filled up: an empty file (no schema
        committed, nothing in the WAL) would only be called damaged by the next run."""
        wal = self.path.with_name(self.path.name + "-wal")
        try:
            empty = self.path.stat().st_size <= 4096 and (not wal.exists() or wal.stat().st_size == 0)
        except OSError:
            return
        if empty:
            for suffix in ("", "-wal", "-shm"):
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)

    def _db_error(self, exc: sqlite3.DatabaseError) -> ToolkitError:
        text = str(exc)
        if self._disk_full(exc):
            from toolkit.fileio import no_space_error

            return no_space_error(
                self.path,
                "benchmark database: ",
                "free some space or pass --db PATH on another disk; the results committed before are kept",
            )
        if "locked" in text or "busy" in text:
            return ToolkitError(
                f"benchmark database {self.path} stayed locked for {BUSY_TIMEOUT_MS // 1000} s by "
                "another process; retry when it finishes"
            )
        if "readonly" in text or "unable to open" in text or "disk I/O" in text:
            return UsageError(
                f"cannot write benchmark database {self.path} ({text}); check its permissions or "
                "pass --db PATH"
            )
        return self._corrupt(exc)

    def close(self) -> None:
        """Close the database connection."""
        self.conn.close()

    def __enter__(self) -> BenchStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def record_accuracy(
    model: str | Path,
    metric: str,
    value: float,
    dataset: str | None = None,
    db: str | Path | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    """Attach an accuracy figure (e.g. from ``toolkit eval``) to ``model`` in the store ``db`` (default location);
    ``toolkit bench report`` then shows it beside every benchmark row of that exact file. Returns the row id."""
    with BenchStore(db) as store:
        return store.record_accuracy(model, metric, value, dataset=dataset, detail=detail)
