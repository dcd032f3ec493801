"""The one catalog of every warm/cold object, in the warehouse next to ``logs`` (so a move's catalog change and
its hot delete are one DuckDB transaction):

- ``tier_objects``: object_key (PK), tier ('warm' | 'cold' | 'restored'), service, month, min_ts, max_ts, rows,
  bytes, sha256, created_at, updated_at. A local restored copy is a row of its own (``restored/...``) next to
  its cold original; an S3 object restored in place changes tier.
- ``tier_object_tokens``: (object_key, token) for every pseudonym token an object holds (purge by token).
- ``lifecycle_runs``: one summary row per tiering run.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from logpilot_dagster.storage.object_store import restored_copy_key
from logpilot_dagster.storage.warehouse import ensure_schema

_COLUMNS = "object_key, tier, service, month, min_ts, max_ts, rows, bytes, sha256"


def ensure_lifecycle_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the catalog tables (and the initial ``logs_all``) when missing (idempotent): they are part of the
    warehouse contract (``storage.warehouse.SCHEMA``)."""
    ensure_schema(con)


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def objects_overlapping(con: duckdb.DuckDBPyConnection, service: str | None, start: datetime | None,
                        end: datetime | None, tiers: tuple[str, ...] = ("warm", "cold", "restored")) -> list[dict]:
    """Catalog rows of objects in ``tiers`` holding rows of ``service`` (None: any) with ``start <= ts < end``
    (either bound None: open), by service and time."""
    sql = (f"SELECT {_COLUMNS} FROM tier_objects WHERE list_contains(?, tier)"
           " AND (CAST(? AS VARCHAR) IS NULL OR service = ?)"
           " AND (CAST(? AS TIMESTAMP) IS NULL OR max_ts >= ?) AND (CAST(? AS TIMESTAMP) IS NULL OR min_ts < ?)"
           " ORDER BY service, min_ts, object_key")
    return _dicts(con.execute(sql, [list(tiers), service, service, start, start, end, end]))


def cold_ranges(con: duckdb.DuckDBPyConnection, service: str | None, start: datetime | None,
                end: datetime | None) -> list[dict]:
    """Cold objects overlapping the range that are NOT readable (no restored copy, not restored in place):
    the rows a query over ``logs_all`` cannot see until ``logpilot restore``."""
    restored = {row["object_key"] for row in objects_overlapping(con, service, start, end, ("restored",))}
    return [row for row in objects_overlapping(con, service, start, end, ("cold",))
            if restored_copy_key(row["object_key"]) not in restored]


def objects_with_token(con: duckdb.DuckDBPyConnection, token: str) -> list[str]:
    """Keys of every object (any tier) that holds the pseudonym token ``token`` (e.g. ``<EMAIL:3f9a1c2b0d4e>``)."""
    return [key for (key,) in con.execute(
        "SELECT DISTINCT object_key FROM tier_object_tokens WHERE token = ? ORDER BY object_key", [token]).fetchall()]
