"""``logs.event_id`` stays unique without a key.

An event id is derived from where the line came from (``sha1(source)[:12]:offset``, live ones with the record
time), so two rows can only share an id when they share ``source``, ``source_offset`` and ``year``. A year load
replaces the year's file rows wholesale; every other writer that may meet rows stored before (a live replay, a
re-parse) keeps only the rows whose id is new, looking at the stored rows of the same sources, offset ranges and
years and nothing else. That costs a scan of those years, not of the history, and needs no index, so it works
the same on a table without constraints (DuckLake).
"""

from __future__ import annotations

import duckdb


def stored_ids(con: duckdb.DuckDBPyConnection, relation: str) -> str:
    """A query for the ids in ``logs`` that rows of ``relation`` (columns event_id, source, source_offset, year)
    could repeat. Its ranges are read now and inlined, so the years and offsets prune the scan."""
    ranges = con.execute(f"SELECT source, min(source_offset), max(source_offset) FROM {relation} "
                         "WHERE source IS NOT NULL GROUP BY source").fetch_arrow_table()
    years = [y for (y,) in con.execute(f"SELECT DISTINCT year FROM {relation} WHERE year IS NOT NULL").fetchall()]
    if not ranges.num_rows or not years:
        return "SELECT NULL::VARCHAR AS event_id WHERE false"
    low, high = min(ranges.column(1).to_pylist()), max(ranges.column(2).to_pylist())
    entries = ", ".join(f"({_quote(s)}, {lo}, {hi})" for s, lo, hi in zip(*(c.to_pylist() for c in ranges.columns)))
    return (f"SELECT l.event_id FROM logs l JOIN (VALUES {entries}) r(source, lo, hi) ON l.source = r.source "
            f"AND l.source_offset BETWEEN r.lo AND r.hi WHERE l.year IN ({', '.join(str(int(y)) for y in years)}) "
            f"AND l.source_offset BETWEEN {int(low)} AND {int(high)}")


def keep_new(con: duckdb.DuckDBPyConnection, relation: str, into: str) -> int:
    """``CREATE TEMP TABLE into`` with the rows of ``relation`` whose id ``logs`` does not hold yet, one row per
    id; returns how many."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {into} AS SELECT DISTINCT ON (n.event_id) n.* FROM {relation} n "
                f"ANTI JOIN ({stored_ids(con, relation)}) s ON n.event_id = s.event_id")
    return con.execute(f"SELECT count(*) FROM {into}").fetchone()[0]


def duplicate_ids(con: duckdb.DuckDBPyConnection, table: str = "logs") -> int:
    """How many rows of ``table`` repeat an id stored before them (0 is the contract)."""
    total, distinct = con.execute(f"SELECT count(*), count(DISTINCT event_id) FROM {table}").fetchone()
    return total - distinct


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"

