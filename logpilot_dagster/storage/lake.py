"""The lake profile's backend: DuckLake with its catalog in Postgres and its data on S3 or a shared directory.

``open_lake`` returns a plain DuckDB connection (in memory) with the offline ``ducklake`` and ``postgres``
extensions loaded, the lake attached as ``lake`` and selected (``USE lake``), so unqualified table names are
the lake's and ``TEMP`` tables stay local to the connection. See ``storage.profile`` for commits and retries.

Configuration (environment):

- ``LOGPILOT_LAKE_CATALOG``: the DuckLake catalog after ``ducklake:``, e.g.
  ``postgres:host=db.internal dbname=logpilot user=logpilot`` (libpq keywords; a password through
  ``PGPASSWORD``). Default: the local Postgres that ``start_local_catalog`` runs under
  ``LOGPILOT_HOME/lake/pg``.
- ``LOGPILOT_LAKE_DATA``: where the Parquet data files go: ``s3://bucket/prefix/`` or a directory shared by
  every writer. Default ``LOGPILOT_HOME/lake/data/``.
- ``LOGPILOT_LAKE_S3_ENDPOINT_URL`` (else ``LOGPILOT_S3_ENDPOINT_URL``): an S3-compatible server; credentials
  as boto3 finds them (``AWS_ACCESS_KEY_ID`` ...).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from logpilot_dagster.storage.s3_secret import create_s3_secret

CATALOG = "lake"
_shared: dict[tuple, duckdb.DuckDBPyConnection] = {}
_shared_lock = threading.Lock()
ATTACH_ATTEMPTS = 5


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def local_catalog_dir(home: Path) -> Path:
    """The data directory of the home's own Postgres (``start_local_catalog``)."""
    return Path(home) / "lake" / "pg"


@dataclass(frozen=True)
class LakeSettings:
    catalog: str  # what follows ``ducklake:`` in the ATTACH string
    data_path: str  # s3://bucket/prefix/ or /shared/dir/ (with a trailing slash)
    s3_endpoint_url: str | None = None

    @classmethod
    def from_env(cls, home: str | os.PathLike) -> "LakeSettings":
        home = Path(home)
        catalog = os.environ.get("LOGPILOT_LAKE_CATALOG") or (
            f"postgres:host={local_catalog_dir(home)} dbname=postgres user=postgres")
        data = os.environ.get("LOGPILOT_LAKE_DATA") or str(home / "lake" / "data")
        endpoint = os.environ.get("LOGPILOT_LAKE_S3_ENDPOINT_URL") or os.environ.get("LOGPILOT_S3_ENDPOINT_URL")
        return cls(catalog, data.rstrip("/") + "/", endpoint or None)

    @property
    def is_s3(self) -> bool:
        return self.data_path.startswith("s3://")

    @property
    def bucket(self) -> str:
        return self.data_path[len("s3://"):].split("/", 1)[0]


def open_lake(home: str | os.PathLike, read_only: bool = False, config: dict | None = None,
              private: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose default catalog is the lake (``READ_ONLY`` when ``read_only``).

    Loading the extensions and attaching costs about a second, so by default the connection is a cursor of one
    DuckDB instance per process and mode that keeps the lake attached (its own transactions; closing it leaves
    the instance). ``private`` (or a ``config``): a DuckDB instance of its own, for settings that must not leak
    to other connections (the agent's locked-down sandbox). ``config`` goes to ``duckdb.connect``, except
    ``enable_external_access``, applied once the lake is attached (attaching needs it)."""
    settings = LakeSettings.from_env(home)
    if private or config:
        return _instance(settings, read_only, config)
    key = (os.getpid(), settings, read_only)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = _instance(settings, read_only, None)
        cursor = _shared[key].cursor()
    cursor.execute(f"USE {CATALOG}")
    return cursor


def _instance(settings: LakeSettings, read_only: bool, config: dict | None) -> duckdb.DuckDBPyConnection:
    from logpilot_dagster.storage.warehouse import load_extension

    config = dict(config or {})
    external = config.pop("enable_external_access", True)
    con = duckdb.connect(config=config)
    try:
        load_extension(con, "ducklake")
        load_extension(con, "postgres_scanner")
        if settings.is_s3:
            create_s3_secret(con, "logpilot_lake", f"s3://{settings.bucket}", settings.s3_endpoint_url)
        elif not read_only:
            Path(settings.data_path).mkdir(parents=True, exist_ok=True)
        _attach(con, settings, read_only)
        con.execute(f"USE {CATALOG}")
        if not external:
            con.execute("SET enable_external_access = false")
        return con
    except BaseException:
        con.close()
        raise


def _attach(con: duckdb.DuckDBPyConnection, settings: LakeSettings, read_only: bool) -> None:
    """``ATTACH`` the lake. The first attach of a new catalog creates DuckLake's tables in Postgres; when two
    processes do that at once one fails on Postgres' unique index and attaches again, to the catalog the other
    made."""
    options = f"DATA_PATH {_sql_string(settings.data_path)}" + (", READ_ONLY" if read_only else "")
    sql = f"ATTACH {_sql_string('ducklake:' + settings.catalog)} AS {CATALOG} ({options})"
    for attempt in range(ATTACH_ATTEMPTS):
        try:
            con.execute(sql)
            return
        except duckdb.Error as exc:
            if "already exists" not in str(exc) or attempt == ATTACH_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def reader_directories(home: str | os.PathLike) -> list[str]:
    """What a locked-down reader must still be allowed to read: the lake's data files."""
    return [LakeSettings.from_env(home).data_path]


def start_local_catalog(home: str | os.PathLike):
    """Start (or join) the home's own Postgres (``pgserver``, PostgreSQL 16, unix socket only) under
    ``LOGPILOT_HOME/lake/pg`` and return the server handle; it stops when the last process using it exits."""
    import pgserver

    pgdata = local_catalog_dir(Path(home))
    pgdata.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(pgdata, cleanup_mode="stop")
