"""Re-parse a source's parked lines once its rule lands: ``quarantine`` rows of its landing files (no source
declared, no header match, bad timestamp) and its ``discovery_queue`` rows (live). In one transaction the lines
that now parse go into ``logs`` and leave both tables, so each moves exactly once; lines that still fail stay.

Event ids: a landing file's line keeps the backfill's id (``sha1(file)[:12]:offset``), so a later backfill of
that year replaces it rather than adding a twin; a live line gets ``sha1(topic/partition)[:12]:offset@q<crc32>``
(the queue does not keep the record time that live ids carry).
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc

from logpilot_dagster.ingest.formats import needs_year
from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.ingest.sources import SourceSpec, year_from_path
from logpilot_dagster.ingest.transform import LOGS_SCHEMA, LineTransformer, source_key
from logpilot_dagster.privacy.pii import PIIMasker
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.unique import keep_new
from logpilot_dagster.storage.warehouse import connect, ensure_schema, upsert

#: Quarantine reasons a new or corrected rule can cure.
CURABLE = ("no_source_declared", "no_format_match", "bad_timestamp", "unknown_source", "no_time_layout")


@dataclass
class ReparseResult:
    source_name: str
    rule_id: str | None
    candidates: int = 0
    moved: int = 0
    still_failing: int = 0
    stats: Counter = field(default_factory=Counter)


def _parked(con, spec: SourceSpec) -> pa.Table:
    """The source's curable lines: (source, source_offset, raw, live) with one row per line."""
    reasons = list(CURABLE)
    quarantined = con.execute(
        f"SELECT DISTINCT source FROM quarantine WHERE reason IN ({', '.join('?' * len(reasons))})",
        reasons).fetchall()
    files = [s for (s,) in quarantined if spec.matches(s)]
    return con.execute(f"""
        SELECT source, source_offset, any_value(raw) AS raw, bool_or(live) AS live FROM (
            SELECT source, source_offset, raw, false AS live FROM quarantine
            WHERE source IN (SELECT unnest(?::VARCHAR[])) AND reason IN ({', '.join('?' * len(reasons))})
            UNION ALL
            SELECT source, source_offset, raw, true AS live FROM discovery_queue WHERE source_name = ?)
        GROUP BY source, source_offset ORDER BY source, source_offset""",
                       [files or [""], *reasons, spec.name]).fetch_arrow_table()


def _live_ids(lines: pa.Table) -> pa.Array:
    return pa.array([f"{source_key(s)}:{o}@q{zlib.crc32(r.encode()):08x}" for s, o, r in
                     zip(*(lines.column(c).to_pylist() for c in ("source", "source_offset", "raw")))], pa.string())


def _transform(registry: SchemaRegistry, spec: SourceSpec, parked: pa.Table) -> tuple[list[pa.Table], Counter]:
    """Rows per group of lines that share a year (a landing file's year from its path; live: from each line, or
    the current year for layouts without one)."""
    transformer = LineTransformer(registry, PIIMasker())
    out, stats = [], Counter()
    live = parked.filter(parked.column("live"))
    files = parked.filter(pc.invert(parked.column("live")))
    groups = [(None, live.drop_columns(["live"]).append_column("event_id", _live_ids(live)))] if live.num_rows else []
    for year in sorted({year_from_path(s) for s in files.column("source").to_pylist()}, key=lambda y: y or 0):
        mask = pa.array([year_from_path(s) == year for s in files.column("source").to_pylist()])
        groups.append((year, files.filter(mask).drop_columns(["live"])))
    fallback = datetime.now(timezone.utc).year if spec.ts_layout and needs_year(spec.ts_layout) else None
    for year, lines in groups:
        result = transformer.transform(spec.name, lines, year or fallback)
        out.append(result.rows)
        stats.update(result.stats)
    registry.absorb(registry.miner(spec.service))
    return out, stats


def reparse_source(paths: LogPilotPaths, source_name: str) -> ReparseResult:
    """Move the source's parked lines that its current rule parses into ``logs`` (idempotent)."""
    registry = SchemaRegistry.load(paths)
    spec = registry.sources.get(source_name)
    if spec is None:
        raise KeyError(f"source {source_name!r} is not declared")
    result = ReparseResult(source_name, spec.rule_id)
    with connect(paths.db_path) as con:
        ensure_schema(con)
        con.execute("BEGIN TRANSACTION")
        try:
            parked = _parked(con, spec)
            result.candidates = parked.num_rows
            if parked.num_rows:
                tables, result.stats = _transform(registry, spec, parked)
                rows = pa.concat_tables(tables).cast(LOGS_SCHEMA) if tables else LOGS_SCHEMA.empty_table()
                result.moved = _commit_rows(con, registry, rows)
                result.still_failing = result.candidates - rows.num_rows
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    if result.moved:
        registry.save_snapshot(paths)
    return result


def _commit_rows(con, registry: SchemaRegistry, rows: pa.Table) -> int:
    """Insert the parsed rows, drop their lines from quarantine and the queue, upsert their templates."""
    con.register("moved_rows", rows)
    templates = pa.table({"template_id": list(registry.templates),
                          "template": [t["template"] for t in registry.templates.values()],
                          "service": [t["service"] for t in registry.templates.values()]})
    con.register("moved_templates", templates)
    try:
        keep_new(con, "moved_rows", "moved_new_rows")  # a line parked twice, or stored meanwhile, goes in once
        [(inserted,)] = con.execute("INSERT INTO logs BY NAME SELECT * FROM moved_new_rows").fetchall()
        con.execute("DROP TABLE moved_new_rows")
        for table in ("quarantine", "discovery_queue"):
            con.execute(f"DELETE FROM {table} t USING moved_rows m "
                        "WHERE t.source = m.source AND t.source_offset = m.source_offset")
        upsert(con, "templates", "template_id", """
            SELECT d.template_id, d.template, d.service, min(l.ts) AS first_seen, max(l.ts) AS last_seen,
                   count(l.ts) AS count
            FROM moved_templates d JOIN logs l USING (template_id)
            WHERE d.template_id IN (SELECT DISTINCT template_id FROM moved_rows)
            GROUP BY ALL""")
        return inserted
    finally:
        con.unregister("moved_rows")
        con.unregister("moved_templates")
