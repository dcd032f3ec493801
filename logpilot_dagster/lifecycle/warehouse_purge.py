"""The hot tier of a purge: re-mask matches in every text column of the warehouse, delete a service's range, and
rewrite the DuckDB file so that no deleted or overwritten value survives in free blocks, the WAL or zone maps."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb

from logpilot_dagster.lifecycle.matching import Matcher

#: Tables the generic scan leaves alone: receipts hold no values; token rows are retired with their objects.
SKIP_TABLES = frozenset({"purge_receipts", "tier_object_tokens"})


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def text_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """Base tables of the warehouse → their (column, type) text columns."""
    rows = con.execute(
        "SELECT c.table_name, c.column_name, c.data_type FROM duckdb_columns() c "
        "JOIN duckdb_tables() t USING (database_name, schema_name, table_name) "
        "WHERE c.database_name = current_database() AND c.schema_name = 'main' AND NOT t.temporary "
        "AND c.data_type IN ('VARCHAR', 'VARCHAR[]') ORDER BY c.table_name, c.column_index").fetchall()
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        if table not in SKIP_TABLES:
            tables.setdefault(table, []).append((column, kind))
    return tables


def remask_tables(con: duckdb.DuckDBPyConnection, matcher: Matcher, apply: bool) -> dict[str, int]:
    """Rows per table holding a match (RE2 prefilter in DuckDB, exact re-mask in Python); ``apply`` writes the
    re-masked values back (only the columns that changed, so key columns are never rewritten)."""
    touched: dict[str, int] = {}
    if matcher.empty:
        return touched
    for table, columns in text_columns(con).items():
        where = matcher.sql_where(columns)
        names = ", ".join(_quote(c) for c, _ in columns)
        found = con.execute(f"SELECT rowid AS purge_rowid, {names} FROM {_quote(table)} WHERE {where}",
                            {"pattern": matcher.re2}).fetch_arrow_table()
        if not found.num_rows:
            continue
        fixed, rows = matcher.mask_table(found)
        if not rows:
            continue
        touched[table] = rows
        if not apply:
            continue
        changed = [c for c, _ in columns if not fixed.column(c).equals(found.column(c))]
        con.register("purge_fixed", fixed)
        try:
            sets = ", ".join(f"{_quote(c)} = f.{_quote(c)}" for c in changed)
            con.execute(f"UPDATE {_quote(table)} SET {sets} FROM purge_fixed f "
                        f"WHERE {_quote(table)}.rowid = f.purge_rowid")
        finally:
            con.unregister("purge_fixed")
    return touched


def delete_service_range(con: duckdb.DuckDBPyConnection, service: str, start: datetime, end: datetime,
                         apply: bool) -> int:
    """Hot rows of ``service`` with ``start <= ts < end`` (deleted when ``apply``)."""
    params = [service, start, end]
    where = "service = ? AND ts >= ? AND ts < ?"
    count = con.execute(f"SELECT count(*) FROM logs WHERE {where}", params).fetchone()[0]
    if count and apply:
        con.execute(f"DELETE FROM logs WHERE {where}", params)
    return count


def rewrite_database(con: duckdb.DuckDBPyConnection, db_path: Path,
                     on_copy: Callable[[str], object] | None = None) -> dict[str, int]:
    """Copy every table, view, index and constraint of the open warehouse into a fresh file and swap it in.

    ``on_copy(alias)`` runs against the copy (attached as ``alias``) before the swap.

    ``con`` must be the read-write connection to ``db_path`` (holding it is the warehouse lock): the fresh file
    replaces the old one while the lock is held, so the next process to open ``db_path`` gets the new file, and
    no write can land in the old one. Returns the row count per table (checked equal in both files)."""
    db_path = Path(db_path)
    fresh = db_path.with_name(db_path.name + ".rewrite")
    for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
        leftover.unlink(missing_ok=True)
    name = con.execute("SELECT current_database()").fetchone()[0]
    con.execute("CHECKPOINT")
    con.execute(f"ATTACH '{str(fresh).replace(chr(39), chr(39) * 2)}' AS purge_rewrite")
    try:
        con.execute(f"COPY FROM DATABASE {_quote(name)} TO purge_rewrite")
        counts = {}
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ? "
                                    "AND schema_name = 'main'", [name]).fetchall():
            old, new = (con.execute(f"SELECT count(*) FROM {_quote(db)}.main.{_quote(table)}").fetchone()[0]
                        for db in (name, "purge_rewrite"))
            if old != new:
                raise RuntimeError(f"rewrite of {db_path}: {table} has {new} rows, expected {old}")
            counts[table] = old
        for kind in ("indexes", "constraints"):
            old, new = (con.execute(f"SELECT count(*) FROM duckdb_{kind}() WHERE database_name = ?",
                                    [db]).fetchone()[0] for db in (name, "purge_rewrite"))
            if old != new:
                raise RuntimeError(f"rewrite of {db_path}: {new} {kind}, expected {old}")
        if on_copy is not None:
            on_copy("purge_rewrite")
    except BaseException:
        con.execute("DETACH purge_rewrite")
        fresh.unlink(missing_ok=True)
        raise
    con.execute("DETACH purge_rewrite")
    os.replace(fresh, db_path)
    return counts
