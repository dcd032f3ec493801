"""The DuckDB warehouse: short-lived connections, the table contract and offline extensions.

``connect`` serves both storage profiles (``storage.profile``): the embedded file, or the DuckLake of the lake
profile (``storage.lake``), attached as the connection's default catalog.

Only one process may hold the file read-write, so connections are opened per unit of work, closed in
``finally`` and retried briefly when another process holds the lock. A process that waits for the lock says so
with a marker file next to the database; the one writer that keeps its connection between transactions (the
live worker, see ``HeldConnection``) lets go as soon as it sees the marker.
"""

from __future__ import annotations

import importlib.util
import platform
import random
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from logpilot_dagster.storage import profile

DUCKDB_VERSION = "v1.4.4"

#: ``logs`` has no key: ``event_id`` is unique by construction (each write path replaces or skips what is stored,
#: see ``storage.unique``). DuckDB's ART index over it would grow with the history and be rewritten by every
#: checkpoint.
SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    event_id VARCHAR,
    ts TIMESTAMP,
    service VARCHAR,
    level VARCHAR,
    template_id VARCHAR,
    message VARCHAR,
    params VARCHAR[],
    source VARCHAR,
    source_offset BIGINT,
    year INTEGER,
    component VARCHAR
);
CREATE TABLE IF NOT EXISTS templates (
    template_id VARCHAR PRIMARY KEY,
    template VARCHAR,
    service VARCHAR,
    first_seen TIMESTAMP,
    last_seen TIMESTAMP,
    count BIGINT
);
CREATE TABLE IF NOT EXISTS template_aliases (
    alias_id VARCHAR PRIMARY KEY,
    template_id VARCHAR,
    recorded_at TIMESTAMP
);
-- lifecycle (logpilot_dagster.lifecycle): the catalog of warm/cold objects; logs_all is just logs until the
-- first tiering run replaces it with logs + the readable tier objects
CREATE TABLE IF NOT EXISTS tier_objects (
    object_key VARCHAR PRIMARY KEY,
    tier VARCHAR,              -- 'warm' | 'cold' | 'restored'
    service VARCHAR,
    month VARCHAR,             -- YYYY-MM (UTC, by ts)
    min_ts TIMESTAMP,
    max_ts TIMESTAMP,
    rows BIGINT,
    bytes BIGINT,
    sha256 VARCHAR,
    created_at TIMESTAMP,
    updated_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS tier_object_tokens (
    object_key VARCHAR,
    token VARCHAR
);
CREATE TABLE IF NOT EXISTS lifecycle_runs (
    run_id VARCHAR,
    step VARCHAR,
    "at" TIMESTAMP,
    detail VARCHAR
);
CREATE VIEW IF NOT EXISTS logs_all AS SELECT * FROM logs;
CREATE TABLE IF NOT EXISTS format_rules (
    source_name VARCHAR PRIMARY KEY,
    service VARCHAR,
    log_format VARCHAR,
    regex VARCHAR,
    ts_formats VARCHAR[],
    timezone VARCHAR,
    year_from VARCHAR,
    origin VARCHAR,
    updated_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS system_catalog (
    system_name VARCHAR PRIMARY KEY,
    department VARCHAR,
    owner_email VARCHAR,
    criticality VARCHAR
);
CREATE TABLE IF NOT EXISTS quarantine (
    source VARCHAR,
    source_offset BIGINT,
    raw VARCHAR,
    reason VARCHAR,
    seen_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS loaded_files (
    year INTEGER,
    source VARCHAR,
    loaded_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS stream_offsets (
    topic VARCHAR,
    "partition" INTEGER,
    next_offset BIGINT,
    updated_at TIMESTAMP,
    last_record VARCHAR,
    stored_through BIGINT,     -- the highest offset ever committed for the partition (never lowered)
    PRIMARY KEY (topic, "partition")
);
ALTER TABLE stream_offsets ADD COLUMN IF NOT EXISTS last_record VARCHAR;
ALTER TABLE stream_offsets ADD COLUMN IF NOT EXISTS stored_through BIGINT;
CREATE TABLE IF NOT EXISTS discovery_queue (
    source_name VARCHAR,
    source VARCHAR,
    source_offset BIGINT,
    raw VARCHAR,
    reason VARCHAR,
    queued_at TIMESTAMP
);
-- analytics (logpilot_dagster.analytics): hourly template series, its progress, alerts and cost views
CREATE TABLE IF NOT EXISTS template_hourly (
    origin VARCHAR,
    template_id VARCHAR,
    service VARCHAR,
    hour TIMESTAMP,
    lines BIGINT,
    errors BIGINT,
    bytes BIGINT,
    PRIMARY KEY (origin, template_id, service, hour)
);
CREATE TABLE IF NOT EXISTS series_progress (
    origin VARCHAR,
    source VARCHAR,
    position BIGINT,
    loaded_at TIMESTAMP,
    PRIMARY KEY (origin, source)
);
CREATE VIEW IF NOT EXISTS template_costs_daily AS
    SELECT date_trunc('day', hour) AS day, service, template_id, sum(lines) AS lines, sum(bytes) AS bytes
    FROM template_hourly GROUP BY ALL;
CREATE VIEW IF NOT EXISTS service_costs_daily AS
    SELECT date_trunc('day', hour) AS day, service, sum(lines) AS lines, sum(bytes) AS bytes,
           sum(errors) AS errors
    FROM template_hourly GROUP BY ALL;
CREATE TABLE IF NOT EXISTS template_events (
    kind VARCHAR,
    template_id VARCHAR,
    service VARCHAR,
    window_start TIMESTAMP,
    window_end TIMESTAMP,
    observed DOUBLE,
    expected DOUBLE,
    score DOUBLE,
    severity VARCHAR,
    sample VARCHAR,
    runbook VARCHAR,
    detail VARCHAR,
    detected_at TIMESTAMP,
    PRIMARY KEY (kind, template_id, service, window_start)
);
"""
#: Lake profile only: one row per name that ``profile.guard`` serialises (``guards`` registers new names).
LAKE_SCHEMA = """
CREATE TABLE IF NOT EXISTS commit_guards (name VARCHAR, n BIGINT);
INSERT INTO commit_guards SELECT 'guards', 0 WHERE NOT EXISTS (SELECT 1 FROM commit_guards);
ALTER TABLE logs SET PARTITIONED BY (year);
"""


class WarehouseLockedError(RuntimeError):
    """Another process kept the DuckDB file locked for longer than we were willing to wait."""


def _is_lock_error(exc: Exception) -> bool:
    """Another process holds the file, or another thread of this one holds it in another mode (read-only vs
    read-write): both pass once the holder closes."""
    text = str(exc)
    return ("Could not set lock" in text or "Conflicting lock" in text
            or "with a different configuration than existing connections" in text
            or "Unique file handle conflict" in text)


def waiting_marker(db_path: str | Path) -> Path:
    """The file that tells a holder of ``db_path`` that another process waits for it."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".waiting")


def _open(db_path: str | Path, read_only: bool, wait_s: float, config: dict | None) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` with retries while another process holds the lock; every retry (re)posts the waiting
    marker, which goes once this process is in (or gives up)."""
    if profile.is_lake():  # no file lock: DuckLake takes concurrent writers
        from logpilot_dagster.storage.lake import open_lake

        return open_lake(Path(db_path).parent, read_only, config)
    deadline = time.monotonic() + wait_s
    delay, marker = 0.05, waiting_marker(db_path)
    waited = False
    try:
        while True:
            try:
                return duckdb.connect(str(db_path), read_only=read_only, config=config or {})
            except (duckdb.IOException, duckdb.ConnectionException) as exc:
                if not _is_lock_error(exc) or time.monotonic() > deadline:
                    if _is_lock_error(exc):
                        raise WarehouseLockedError(f"{db_path} stayed locked for {wait_s:.0f}s: {exc}") from exc
                    raise
                waited = True
                try:
                    marker.touch()
                except OSError:  # a read-only directory: just wait
                    pass
                time.sleep(delay + random.random() * delay)
                delay = min(delay * 2, 0.2)
    finally:
        if waited:
            marker.unlink(missing_ok=True)


@contextmanager
def connect(db_path: str | Path, read_only: bool = False, wait_s: float = 120.0,
            config: dict | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open ``db_path`` for one unit of work, waiting (with jitter) while another process holds the lock.
    In the lake profile: the lake of ``db_path``'s home, attached read-only when ``read_only``.

    ``config`` goes to ``duckdb.connect`` (e.g. ``{"enable_external_access": False}`` for untrusted SQL). On
    the lake, connections of one process share a DuckDB instance (``storage.lake.open_lake``): change no global
    setting on them."""
    con = _open(db_path, read_only, wait_s, config)
    try:
        yield con
    finally:
        con.close()


class HeldConnection:
    """A read-write connection kept open between the transactions of a busy writer.

    Re-opening the file for every transaction costs a checkpoint each time; a writer with a backlog keeps the connection instead and closes it after ``linger_s`` without work, or
    right after a transaction when another process left its waiting marker (then pauses up to ``yield_s`` so
    that process gets the lock). ``threads``: DuckDB's, one by default (a writer next to busy processes).
    ``checkpoint_threshold``: the WAL size that triggers a checkpoint while held (closing always checkpoints)."""

    def __init__(self, db_path: str | Path, linger_s: float = 0.5, yield_s: float = 2.0, threads: int = 1,
                 checkpoint_threshold: str = "64MB") -> None:
        self.db_path = Path(db_path)
        self.threads = threads
        self.checkpoint_threshold = checkpoint_threshold
        self.linger_s = linger_s
        self.yield_s = yield_s
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    @contextmanager
    def use(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection for one unit of work (opened, with the schema ensured, when not held)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            if self._con is None:
                self._con = _open(self.db_path, False, 120.0,
                                  {"threads": self.threads, "checkpoint_threshold": self.checkpoint_threshold})
                ensure_schema(self._con)
            try:
                yield self._con
            except BaseException:
                self._close()
                raise
            if waiting_marker(self.db_path).exists():
                self._close()
                self._let_waiter_in()
            else:
                self._timer = threading.Timer(self.linger_s, self.close)
                self._timer.daemon = True
                self._timer.start()

    def _let_waiter_in(self) -> None:
        marker = waiting_marker(self.db_path)
        deadline = time.monotonic() + self.yield_s
        while marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        marker.unlink(missing_ok=True)  # left by a process that gave up or died

    def _close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def close(self) -> None:
        """Close the connection now (it reopens on the next ``use``)."""
        with self._lock:
            self._close()


_LAKE_TABLES = len(re.findall(r"CREATE TABLE IF NOT EXISTS", SCHEMA + LAKE_SCHEMA))


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the contract tables when missing (idempotent); a file from before ``logs`` lost its primary key
    is migrated once. In the lake profile: in one transaction, retried when another process creates them at the
    same time; a lake that has them all is left untouched."""
    if not profile.is_lake():
        con.execute(SCHEMA)
        if con.execute("SELECT count(*) FROM duckdb_constraints() WHERE database_name = current_database() "
                       "AND schema_name = 'main' AND table_name = 'logs' AND constraint_type = 'PRIMARY KEY'"
                       ).fetchone()[0]:
            _drop_logs_key(con)
        return
    present = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                          "AND schema_name = 'main' AND table_name IN (SELECT unnest(?::VARCHAR[]))",
                          [re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA + LAKE_SCHEMA)]).fetchone()[0]
    if present == _LAKE_TABLES:
        return

    def create() -> None:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(profile.table_ddl(SCHEMA) + LAKE_SCHEMA)
            con.execute("COMMIT")
        except BaseException:
            profile.rollback(con)
            raise

    profile.retry_conflicts(create, "create the lake's tables")


def upsert(con: duckdb.DuckDBPyConnection, table: str, keys: str, source: str, params: list | None = None) -> None:
    """Insert the rows of the query ``source`` into ``table``, replacing those with the same ``keys``
    (comma-separated columns). ``MERGE INTO`` by column name, so it needs no key constraint (DuckLake has none);
    ``source`` names its columns as the table does."""
    con.execute(f"MERGE INTO {table} USING ({source}) AS upserted USING ({keys}) "
                "WHEN MATCHED THEN UPDATE BY NAME WHEN NOT MATCHED THEN INSERT BY NAME", params)


def insert_missing(con: duckdb.DuckDBPyConnection, table: str, keys: str, source: str,
                   params: list | dict | None = None) -> None:
    """Insert the rows of the query ``source`` whose ``keys`` ``table`` does not hold yet (by column name)."""
    con.execute(f"MERGE INTO {table} USING ({source}) AS upserted USING ({keys}) "
                "WHEN NOT MATCHED THEN INSERT BY NAME", params)


def _drop_logs_key(con: duckdb.DuckDBPyConnection) -> None:
    """Rebuild ``logs`` without its key, rows in their stored order (DuckDB cannot drop a primary key); in the
    caller's transaction when one is open, else in its own."""
    try:
        con.execute("BEGIN TRANSACTION")
        own = True
    except duckdb.TransactionException:
        own = False
    try:
        con.execute("CREATE TABLE logs_unkeyed AS SELECT * FROM logs WHERE false")
        con.execute("INSERT INTO logs_unkeyed SELECT * FROM logs")
        con.execute("DROP TABLE logs")
        con.execute("ALTER TABLE logs_unkeyed RENAME TO logs")
        if own:
            con.execute("COMMIT")
    except BaseException:
        if own:
            con.execute("ROLLBACK")
        raise


def extension_path(name: str) -> Path:
    """The offline extension shipped by the PyPI package ``duckdb-ext-<name>``."""
    spec = importlib.util.find_spec("duckdb_ext")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"duckdb-ext-{name} is not installed")
    arch = "linux_arm64" if platform.machine() in ("aarch64", "arm64") else "linux_amd64"
    base = Path(list(spec.submodule_search_locations)[0]) / "extensions" / DUCKDB_VERSION / arch
    path = base / f"{name}.duckdb_extension"
    if not path.exists():
        raise RuntimeError(f"DuckDB extension {name!r} not found at {path}; install duckdb-ext-{name}")
    return path


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """``LOAD`` an extension from its PyPI package, never from the network."""
    con.execute(f"LOAD '{extension_path(name)}'")
