"""Screened record groups -> one ``sink.Batch``: the shared ``LineTransformer`` (header parse, PII masking,
match known templates first, mine only unknown ones), plus the live path's own event-time checks."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.stream.event_time import ensure_layout
from logpilot_dagster.stream.records import BAD_TIME, EARLIEST_EVENT_MS, FUTURE_SLACK_MS, Screened
from logpilot_dagster.stream.sink import Batch
from logpilot_dagster.ingest.transform import LOGS_SCHEMA, QUARANTINE_SCHEMA, LineTransformer, quarantine_table, where
from logpilot_dagster.privacy.pii import default_masker
from logpilot_dagster.storage.warehouse import connect

UNKNOWN_SOURCE, NO_TIME_LAYOUT = "unknown_source", "no_time_layout"
#: Quarantine reasons that mean "no known format for this line": such lines also go to ``discovery_queue``.
DISCOVERY_REASONS = (UNKNOWN_SOURCE, NO_TIME_LAYOUT, "no_format_match")
DISCOVERY_SCHEMA = pa.schema([("source_name", pa.string()), ("source", pa.string()), ("source_offset", pa.int64()),
                              ("raw", pa.string()), ("reason", pa.string())])
TEMPLATES_SCHEMA = pa.schema([("template_id", pa.string()), ("template", pa.string()), ("service", pa.string())])


def _naive_utc(ms: int) -> datetime:
    return datetime(1970, 1, 1) + timedelta(milliseconds=ms)


def _event_years(rows: pa.Table) -> pa.Table:
    """``year`` from each row's event time. The group's year fills formats without one, but it comes from the
    record time, which is the arrival time for collectors such as Vector."""
    return rows.set_column(rows.schema.get_field_index("year"), "year",
                           pc.cast(pc.year(rows.column("ts")), pa.int32()))


def _quarantine_all(lines: pa.Table, reason: str) -> pa.Table:
    n = lines.num_rows
    return quarantine_table(lines.column("source").to_pylist(), lines.column("source_offset").to_pylist(),
                            lines.column("raw").to_pylist(), [reason] * n)


def _for_discovery(source_name: str, quarantined: pa.Table) -> pa.Table:
    """The quarantined lines (already masked) that no known format covers, with the source name they came under."""
    lines = quarantined.filter(pc.is_in(quarantined.column("reason"), value_set=pa.array(DISCOVERY_REASONS)))
    source_name = default_masker().mask(source_name)  # the record key: a name or path the producer chose
    return pa.table({"source_name": pa.array([source_name] * lines.num_rows, pa.string()),
                     "source": lines.column("source"), "source_offset": lines.column("source_offset"),
                     "raw": lines.column("raw"), "reason": lines.column("reason")}, schema=DISCOVERY_SCHEMA)


class BatchBuilder:
    """Holds the schema registry (reloaded when its snapshot changes) and turns screened records into a batch."""

    def __init__(self, paths: LogPilotPaths) -> None:
        self.paths = paths
        self._snapshot_mtime: float | None = None
        self.refresh()

    def _snapshot_stamp(self) -> float | None:
        try:
            return self.paths.registry_snapshot.stat().st_mtime
        except FileNotFoundError:
            return None

    def refresh(self) -> None:
        """Reload the registry when the backfill saved a new snapshot (new sources, layouts or templates).

        Templates mined live exist only in DuckDB's ``templates``; they seed the miners too, so a restarted
        worker gives known shapes the ids they already have."""
        stamp = self._snapshot_stamp()
        if stamp == self._snapshot_mtime and hasattr(self, "registry"):
            return
        self._snapshot_mtime = stamp
        self.registry = SchemaRegistry.load(self.paths)
        for tid, entry in self._stored_templates().items():
            if tid not in self.registry.aliases:
                self.registry.templates.setdefault(tid, entry)
        self.transformer = LineTransformer(self.registry)
        self._aliases_seen: dict[str, str] = {}

    def _stored_templates(self) -> dict[str, dict]:
        if not self.paths.db_path.exists():
            return {}
        with connect(self.paths.db_path, read_only=True) as con:
            try:
                rows = con.execute("SELECT template_id, template, service FROM templates").fetchall()
            except duckdb.CatalogException:
                return {}
        return {tid: {"template": text, "service": service} for tid, text, service in rows}

    def build(self, topic: str, screened: Screened, t1_us: int | None, now_ms: int) -> tuple[Batch, int]:
        """The batch to write and the number of lines dropped because their parsed time is at or before T1."""
        rows, quarantine, discovery, services, skipped = [], [screened.quarantine], [], set(), 0
        for group in screened.groups:
            lines = group.lines
            spec = self.registry.sources.get(group.source_name)
            out = None
            if spec is None:
                unparsed = _quarantine_all(lines, UNKNOWN_SOURCE)
            elif not ensure_layout(spec, lines.column("raw"), group.year):
                unparsed = _quarantine_all(lines, NO_TIME_LAYOUT)
            else:
                out = self.transformer.transform(group.source_name, lines, group.year, match_first=True)
                unparsed = out.quarantine
            quarantine.append(unparsed)
            discovery.append(_for_discovery(group.source_name, unparsed))
            if out is None:
                continue
            services.add(spec.service)
            kept, late, dropped = self._check_times(_event_years(out.rows), lines, t1_us, now_ms)
            rows.append(kept)
            quarantine.append(late)
            skipped += dropped
        rows = pa.concat_tables(rows) if rows else LOGS_SCHEMA.empty_table()
        aliases = self._new_aliases(services)
        return Batch(
            topic=topic,
            rows=rows,
            quarantine=pa.concat_tables([q.cast(QUARANTINE_SCHEMA) for q in quarantine]),
            discovery=pa.concat_tables(discovery) if discovery else DISCOVERY_SCHEMA.empty_table(),
            next_offsets=screened.next_offsets,
            last_record=screened.last_record,
            templates=self._templates(services, set(rows.column("template_id").unique().to_pylist())
                                      | set(aliases.values())),
            aliases=aliases,
        ), skipped

    @staticmethod
    def _check_times(rows: pa.Table, lines: pa.Table, t1_us: int | None,
                     now_ms: int) -> tuple[pa.Table, pa.Table, int]:
        """Split transformed rows on their parsed event time: keep, quarantine (out of range), drop (<= T1, at the
        timestamps' full precision)."""
        ts = rows.column("ts")
        low = pa.scalar(_naive_utc(EARLIEST_EVENT_MS), pa.timestamp("us"))
        high = pa.scalar(_naive_utc(now_ms + FUTURE_SLACK_MS), pa.timestamp("us"))
        bad = pc.or_(pc.less(ts, low), pc.greater(ts, high))
        t1 = None if t1_us is None else datetime(1970, 1, 1) + timedelta(microseconds=t1_us)
        early = pc.less_equal(ts, pa.scalar(t1, pa.timestamp("us"))) if t1 is not None else None
        keep = pc.invert(bad) if early is None else pc.and_(pc.invert(bad), pc.invert(early))
        dropped = 0 if early is None else pc.sum(pc.and_(pc.invert(bad), early)).as_py() or 0
        if not pc.any(bad).as_py():
            late = QUARANTINE_SCHEMA.empty_table()
        else:
            bad_rows = rows.filter(bad)
            raw = pc.take(lines.column("raw"),
                          pc.index_in(bad_rows.column("event_id"), value_set=lines.column("event_id")))
            late = quarantine_table(bad_rows.column("source").to_pylist(),
                                    bad_rows.column("source_offset").to_pylist(), raw.to_pylist(),
                                    [BAD_TIME] * bad_rows.num_rows)
        return where(rows, keep), late, dropped

    def _templates(self, services: set[str], wanted: set[str]) -> pa.Table:
        """Text and service of the ``wanted`` template ids (those of the batch's rows and alias targets)."""
        ids, texts, owners = [], [], []
        for service in sorted(services):
            for tid, text in self.registry.miner(service).templates().items():
                if tid not in wanted:
                    continue
                ids.append(tid)
                texts.append(text)
                owners.append(service)
        return pa.table([pa.array(ids, pa.string()), pa.array(texts, pa.string()), pa.array(owners, pa.string())],
                        schema=TEMPLATES_SCHEMA)

    def _new_aliases(self, services: set[str]) -> dict[str, str]:
        """Aliases the miners recorded since the previous batch (old id -> current id)."""
        new = {}
        for service in services:
            for old, current in self.registry.miner(service).aliases.items():
                if self._aliases_seen.get(old) != current:
                    new[old] = current
        self._aliases_seen.update(new)
        return new
