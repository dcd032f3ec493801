"""The DuckDB warehouse: short-lived connections, the table contract and offline extensions.

Only one process may hold the file read-write, so connections are opened per unit of work, closed in
``finally`` and retried briefly when another process holds the lock.
"""

from __future__ import annotations

import importlib.util
import platform
import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

DUCKDB_VERSION = "v1.4.4"

SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    event_id VARCHAR PRIMARY KEY,
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
    PRIMARY KEY (topic, "partition")
);
"""


class WarehouseLockedError(RuntimeError):
    """Another process kept the DuckDB file locked for longer than we were willing to wait."""


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


@contextmanager
def connect(db_path: str | Path, read_only: bool = False, wait_s: float = 120.0,
            config: dict | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open ``db_path`` for one unit of work, waiting (with jitter) while another process holds the lock.

    ``config`` goes to ``duckdb.connect`` (e.g. ``{"enable_external_access": False}`` for untrusted SQL)."""
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(db_path), read_only=read_only, config=config or {})
            break
        except duckdb.IOException as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                if _is_lock_error(exc):
                    raise WarehouseLockedError(f"{db_path} stayed locked for {wait_s:.0f}s: {exc}") from exc
                raise
            time.sleep(delay + random.random() * delay)
            delay = min(delay * 2, 1.0)
    try:
        yield con
    finally:
        con.close()


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the contract tables when missing (idempotent)."""
    con.execute(SCHEMA)


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
