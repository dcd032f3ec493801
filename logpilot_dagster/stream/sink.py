"""One DuckDB transaction per batch: rows, quarantine (and lines of unknown format for ``discovery_queue``),
template stats and the consumed offsets together.

Because ``stream_offsets`` commits with the rows, the worker resumes exactly after the last stored record
whatever happened to the process or to the broker's group offsets. ``logs`` has no key, so a batch that may
repeat stored records (it starts at or below ``stream_offsets.stored_through``, the highest offset ever committed
for the partition: a broker that restarted empty, lost offsets) keeps only the records whose event id is new,
looked up among the stored rows of its partitions, offset ranges and years (``storage.unique``); the common path,
a batch that starts past everything stored, pays for no lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from logpilot_dagster.ingest.template_text import refit_params
from logpilot_dagster.storage.profile import retry_conflicts, rollback
from logpilot_dagster.storage.unique import keep_new
from logpilot_dagster.storage.warehouse import connect, ensure_schema, upsert
from logpilot_dagster.stream.records import record_source

_CURRENT_ID = "coalesce(a.template_id, r.template_id)"
_ROWS = "{rows} r LEFT JOIN template_aliases a ON a.alias_id = r.template_id"
_UPSERT_TEMPLATES = f"""
MERGE INTO templates USING (
    SELECT d.template_id, d.template, d.service, min(r.ts) AS first_seen, max(r.ts) AS last_seen, count(*) AS count
    FROM {_ROWS} JOIN batch_templates d ON d.template_id = {_CURRENT_ID}
    WHERE d.template_id NOT IN (SELECT alias_id FROM batch_aliases)
    GROUP BY ALL
) AS n USING (template_id)
WHEN MATCHED THEN UPDATE SET
    template = n.template,
    first_seen = least(templates.first_seen, n.first_seen),
    last_seen = greatest(templates.last_seen, n.last_seen),
    count = templates.count + n.count
WHEN NOT MATCHED THEN INSERT BY NAME
"""
_RECOUNT = """
SELECT d.template_id, d.template, d.service, min(l.ts) AS first_seen, max(l.ts) AS last_seen, count(l.ts) AS count
FROM batch_templates d LEFT JOIN logs l USING (template_id)
WHERE d.template_id IN (SELECT template_id FROM {recount})
GROUP BY ALL
"""
_REGISTERED = ("batch_rows", "batch_quarantine", "batch_discovery", "batch_templates", "batch_aliases",
               "batch_offsets")


@dataclass
class Batch:
    """What one transaction writes. ``templates`` (template_id, template, service) must cover every id in
    ``rows``; ``aliases`` maps ids that Drain generalised in this batch to their current id."""

    topic: str
    rows: pa.Table
    quarantine: pa.Table
    discovery: pa.Table  # quarantined lines no known format covers, for discovery (``batches.DISCOVERY_SCHEMA``)
    next_offsets: dict[int, int]
    last_record: dict[int, str]
    templates: pa.Table
    aliases: dict[str, str]


def stored_offsets(db_path: Path, topic: str) -> dict[int, tuple[int, str | None]]:
    """``partition -> (next_offset, fingerprint of the record before it)`` from ``stream_offsets``."""
    with connect(db_path) as con:
        ensure_schema(con)
        rows = con.execute('SELECT "partition", next_offset, last_record FROM stream_offsets WHERE topic = ?',
                           [topic]).fetchall()
    return {partition: (next_offset, last) for partition, next_offset, last in rows}


def write_batch(con: duckdb.DuckDBPyConnection, batch: Batch) -> int:
    """Commit the batch atomically on ``con``; returns the number of rows actually inserted into ``logs``."""
    con.register("batch_rows", batch.rows)
    con.register("batch_quarantine", batch.quarantine)
    con.register("batch_discovery", batch.discovery)
    con.register("batch_templates", batch.templates)
    con.register("batch_aliases", pa.table({"alias_id": pa.array(list(batch.aliases), pa.string()),
                                            "template_id": pa.array(list(batch.aliases.values()), pa.string())}))
    try:  # lake: group members writing other partitions update the same offsets and templates files
        return retry_conflicts(lambda: _transaction(con, batch), f"live batch of {batch.topic}")
    finally:
        for name in _REGISTERED:
            con.unregister(name)


def _stored_through(con: duckdb.DuckDBPyConnection, topic: str, partitions: list[int]) -> dict[int, int | None]:
    """Per partition, the highest offset stored so far: ``stream_offsets.stored_through``, or, for a partition
    without it (offsets lost, a file from before the column), the highest in ``logs`` (a scan, once)."""
    stored = dict(con.execute('SELECT "partition", stored_through FROM stream_offsets WHERE topic = ?',
                              [topic]).fetchall())
    for partition in partitions:
        if stored.get(partition) is None:
            stored[partition] = con.execute("SELECT max(source_offset) FROM logs WHERE source = ?",
                                            [record_source(topic, partition)]).fetchone()[0]
    return stored


def _may_repeat(con: duckdb.DuckDBPyConnection, batch: Batch, stored: dict[int, int | None]) -> bool:
    """Whether some partition of the batch starts at or below an offset stored before."""
    through = {record_source(batch.topic, p): s for p, s in stored.items() if s is not None}
    if not through:
        return False
    firsts = con.execute("SELECT source, min(source_offset) FROM (SELECT source, source_offset FROM batch_rows "
                         "UNION ALL SELECT source, source_offset FROM batch_quarantine) GROUP BY source").fetchall()
    return any(source in through and first <= through[source] for source, first in firsts)


def _register_offsets(con: duckdb.DuckDBPyConnection, batch: Batch, stored: dict[int, int | None]) -> None:
    partitions = list(batch.next_offsets)
    con.register("batch_offsets", pa.table({
        "partition": pa.array(partitions, pa.int32()),
        "next_offset": pa.array([batch.next_offsets[p] for p in partitions], pa.int64()),
        "last_record": pa.array([batch.last_record.get(p) for p in partitions], pa.string()),
        "stored_through": pa.array([max(batch.next_offsets[p] - 1, stored.get(p) if stored.get(p) is not None
                                        else -1) for p in partitions], pa.int64())}))


def _new_only(table: str, replayed: bool) -> str:
    """A WHERE clause that, for a replayed batch, leaves out lines ``table`` already holds."""
    if not replayed:
        return ""
    return (f"WHERE NOT EXISTS (SELECT 1 FROM {table} o WHERE o.source = n.source "
            "AND o.source_offset = n.source_offset AND o.raw IS NOT DISTINCT FROM n.raw)")


def _transaction(con: duckdb.DuckDBPyConnection, batch: Batch) -> int:
    con.execute("BEGIN TRANSACTION")
    try:
        stored = _stored_through(con, batch.topic, list(batch.next_offsets))
        _register_offsets(con, batch, stored)
        replayed = _may_repeat(con, batch, stored)
        rows = "batch_rows"
        if replayed:
            keep_new(con, "batch_rows", "batch_new_rows")
            rows = "batch_new_rows"
        if batch.aliases:
            upsert(con, "template_aliases", "alias_id",
                   "SELECT alias_id, template_id, now() AS recorded_at FROM batch_aliases")
            con.execute("CREATE OR REPLACE TEMP TABLE moved AS SELECT event_id FROM logs "
                        "WHERE template_id IN (SELECT alias_id FROM batch_aliases)")
            con.execute("UPDATE logs SET template_id = a.template_id FROM batch_aliases a "
                        "WHERE logs.template_id = a.alias_id")
            con.execute("DELETE FROM templates WHERE template_id IN (SELECT alias_id FROM batch_aliases)")
            upsert(con, "templates", "template_id", _RECOUNT.format(recount="batch_aliases"))
            refit_params(con, "SELECT event_id FROM moved")  # params follow the text of the current template
            con.execute("DROP TABLE moved")
        [(inserted,)] = con.execute(f"""
            INSERT INTO logs BY NAME
            SELECT r.* REPLACE ({_CURRENT_ID} AS template_id) FROM {_ROWS.format(rows=rows)}""").fetchall()
        con.execute(_UPSERT_TEMPLATES.format(rows=rows))
        refit_params(con, f"SELECT r.event_id FROM {rows} r JOIN template_aliases a ON a.alias_id = r.template_id")
        con.execute("INSERT INTO quarantine BY NAME SELECT * FROM batch_quarantine n "
                    + _new_only("quarantine", replayed))
        con.execute("INSERT INTO discovery_queue BY NAME SELECT *, now() AS queued_at FROM batch_discovery n "
                    + _new_only("discovery_queue", replayed))
        upsert(con, "stream_offsets", 'topic, "partition"', 'SELECT ? AS topic, "partition", next_offset, '
               'now() AS updated_at, last_record, stored_through FROM batch_offsets', [batch.topic])
        if replayed:
            con.execute("DROP TABLE batch_new_rows")
        con.execute("COMMIT")
        return inserted
    except BaseException:
        rollback(con)  # also after a failed COMMIT (a lake conflict), which already ended the transaction
        raise
