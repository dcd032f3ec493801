"""``logs_all``: one persistent view over hot ``logs`` and every readable (warm or restored) tier object."""

from __future__ import annotations

import duckdb

from logpilot_dagster.lifecycle.settings import RESTORED, WARM, TierStoreSettings
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage import profile
from logpilot_dagster.storage.lake import reader_directories


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def logs_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The columns of ``logs`` in table order (the view and every tier object have exactly these)."""
    return [name for (name,) in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'logs' AND schema_name = 'main' "
        "AND database_name = current_database() ORDER BY column_index").fetchall()]


def refresh_logs_all(con: duckdb.DuckDBPyConnection, paths: LogPilotPaths,
                     settings: TierStoreSettings | None = None) -> None:
    """(Re)create ``logs_all`` = ``logs`` UNION ALL every warm and restored object in the catalog.

    An object whose service also has rows in ``logs`` within the object's month and time range (a year loaded
    again after it was tiered, late rows) gives only the events ``logs`` does not hold: hot wins, as at the next
    tiering's merge. The others, the month a tiering cut in two among them, are read as they are, so the usual
    view costs nothing extra.

    Called in the same transaction as the catalog change that makes an object (un)readable, and as a year's
    load. Over S3 the view holds ``s3://`` URIs: a connection that reads it must ``LOAD httpfs`` and have an S3
    secret (``prepare_reader``); so must the connection that refreshes it."""
    settings = settings or TierStoreSettings.from_env(paths)
    if settings.is_s3:  # binding the view reads the objects' footers
        from logpilot_dagster.lifecycle.s3_access import create_s3_secret

        create_s3_secret(con, settings)
    columns = ", ".join(f'"{c}"' for c in logs_columns(con))
    objects = con.execute(  # hot rows newer than every object are not scanned (no tiers: none at all)
        "WITH o AS (SELECT * FROM tier_objects WHERE tier IN ('warm', 'restored')), "
        "hot AS (SELECT service, strftime(ts, '%Y-%m') AS month, min(ts) AS lo, max(ts) AS hi FROM logs "
        "        WHERE ts <= (SELECT max(max_ts) FROM o) GROUP BY ALL) "
        "SELECT o.object_key, coalesce(hot.lo <= o.max_ts AND hot.hi >= o.min_ts, false) FROM o "
        "LEFT JOIN hot ON hot.service = o.service AND hot.month = o.month ORDER BY o.object_key").fetchall()
    sql = f"SELECT {columns} FROM logs"
    clean = [key for key, is_shadowed in objects if not is_shadowed]
    if clean:
        sql += f" UNION ALL SELECT {columns} FROM read_parquet([{_uris(settings, clean)}])"
    shadowed = [key for key, is_shadowed in objects if is_shadowed]
    if shadowed:  # by event id alone: a reload may have parsed an event's time differently
        sql += (f" UNION ALL SELECT {columns} FROM read_parquet([{_uris(settings, shadowed)}]) w"
                " WHERE NOT EXISTS (SELECT 1 FROM logs h WHERE h.event_id = w.event_id)")
    con.execute(f"CREATE OR REPLACE VIEW logs_all AS {sql}")


def _uris(settings: TierStoreSettings, keys: list[str]) -> str:
    return ", ".join(_sql_string(settings.uri(key)) for key in keys)


def tier_directories(paths: LogPilotPaths, settings: TierStoreSettings | None = None) -> list[str]:
    """What a locked-down connection must be allowed to read for ``logs_all``: the warm and restored
    directories (local), or the warm and cold prefixes (S3, where a restored object is read in place).
    Use as ``SET allowed_directories=[...]`` before ``SET enable_external_access=false``."""
    settings = settings or TierStoreSettings.from_env(paths)
    tiers = (WARM, "cold") if settings.is_s3 else (WARM, RESTORED)
    return [settings.uri(tier) + "/" for tier in tiers]


def prepare_reader(con: duckdb.DuckDBPyConnection, paths: LogPilotPaths,
                   settings: TierStoreSettings | None = None) -> None:
    """Make ``con`` able to read ``logs_all`` and nothing else outside the database file: over S3 load httpfs
    and create a temporary S3 secret from the environment's credentials; then allow only
    ``tier_directories`` (and the lake's data files in the lake profile) and turn external access off
    (irreversible for this connection)."""
    settings = settings or TierStoreSettings.from_env(paths)
    if settings.is_s3:
        from logpilot_dagster.lifecycle.s3_access import create_s3_secret

        create_s3_secret(con, settings)
    readable = tier_directories(paths, settings)
    if profile.is_lake():
        readable += reader_directories(paths.home)
    allowed = ", ".join(_sql_string(d) for d in readable)
    con.execute(f"SET allowed_directories=[{allowed}]")
    con.execute("SET enable_external_access=false")
