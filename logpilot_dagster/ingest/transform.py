"""One batch of raw lines -> rows of the ``logs`` contract plus quarantine rows; shared by backfill and stream.

Steps, each over a whole Arrow column: header parse -> timestamp (UTC) -> PII masking -> template id (Drain3 on
distinct masked messages) -> params (the values behind the template's wildcards) -> deterministic event id.
Messages, components, sources and quarantined lines are all masked; only event ids hash the real source.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc

from logpilot_dagster.privacy.pii import PIIMasker, default_masker
from logpilot_dagster.ingest.registry import SchemaRegistry

LOGS_SCHEMA = pa.schema([
    ("event_id", pa.string()), ("ts", pa.timestamp("us")), ("service", pa.string()), ("level", pa.string()),
    ("template_id", pa.string()), ("message", pa.string()), ("params", pa.list_(pa.string())),
    ("source", pa.string()), ("source_offset", pa.int64()), ("year", pa.int32()), ("component", pa.string()),
])
QUARANTINE_SCHEMA = pa.schema([
    ("source", pa.string()), ("source_offset", pa.int64()), ("raw", pa.string()), ("reason", pa.string()),
    ("seen_at", pa.timestamp("us")),
])


def source_key(source: str) -> str:
    """Short stable prefix of event ids for one source (file path or topic/partition)."""
    return hashlib.sha1(source.encode()).hexdigest()[:12]


def event_ids(source: str, offsets: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(source_key(source), pc.cast(offsets, pa.string()), ":")


def quarantine_table(sources, offsets, raws, reasons, masker: PIIMasker | None = None) -> pa.Table:
    """Quarantine rows (lists or Arrow arrays), stamped with the current time. Sources and raw text are
    PII-masked here (``masker``, default: the mode in force), so a bad line is never stored as it came."""
    masker = masker or default_masker()
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    table = pa.table({"source": sources, "source_offset": offsets, "raw": raws, "reason": reasons,
                      "seen_at": pa.array([now] * len(sources), pa.timestamp("us"))}).cast(QUARANTINE_SCHEMA)
    return table.set_column(0, "source", masker.mask_distinct(table.column("source"))).set_column(
        2, "raw", masker.mask_array(table.column("raw")))


def where(values, ok: pa.Array):
    """``values`` (an array or a table) at the rows where ``ok`` holds: as they are, with no copy, when it holds
    for every row (a null counts as false, as in ``filter``)."""
    return values if pc.all(ok, skip_nulls=False).as_py() else values.filter(ok)


@dataclass
class Transformed:
    rows: pa.Table
    quarantine: pa.Table
    stats: Counter = field(default_factory=Counter)
    #: seconds per step (parse, mask, mine, params, arrow), for benchmarks and step metadata
    timings: Counter = field(default_factory=Counter)


@dataclass
class Prepared:
    """A batch parsed, masked and built into ``logs`` columns except the template id and params
    (``LineTransformer.prepare``): no miner is touched, so batches prepare on another thread while the previous
    one is mined."""

    service: str
    columns: dict[str, pa.Array]
    message: pa.Array
    quarantine: pa.Table
    stats: Counter
    timings: Counter


class LineTransformer:
    """Applies a source's format rule, the PII masker and the registry's miner to batches of lines."""

    def __init__(self, registry: SchemaRegistry, masker: PIIMasker | None = None):
        self.registry = registry
        self.masker = masker or PIIMasker()

    def transform(self, source_name: str, lines: pa.Table, year: int | None = None, *,
                  match_first: bool = False) -> Transformed:
        """``lines`` has columns source, source_offset, raw (and optionally event_id).

        ``year`` (the backfill partition) fills formats without a year and becomes the rows' ``year``, so a
        re-run replaces exactly what the partition loaded even when a file crosses New Year; without it the
        year comes from each timestamp. ``match_first`` (the live path) matches known templates before mining.
        """
        return self.complete(self.prepare(source_name, lines, year), match_first=match_first)

    def prepare(self, source_name: str, lines: pa.Table, year: int | None = None) -> Prepared:
        """Header parse, quarantine rows, PII masking and event ids of a batch (thread-safe: touches no miner)."""
        spec = self.registry.sources.get(source_name)
        if spec is None:
            raise KeyError(f"unknown source {source_name!r}; declare it in sources.yaml")
        stats: Counter = Counter()
        timings: Counter = Counter()
        clock = time.perf_counter()
        raw = lines.column("raw").combine_chunks()
        parsed = spec.header_format().parse(raw, year)
        ok = parsed.ok
        reasons = pc.if_else(ok, pa.scalar(None, pa.string()),
                             pc.if_else(pc.is_valid(parsed.content), "bad_timestamp", "no_format_match"))
        bad = pc.invert(ok)
        timings["parse"] += time.perf_counter() - clock
        clock = time.perf_counter()
        quarantine = quarantine_table(pc.filter(lines.column("source"), bad),
                                      pc.filter(lines.column("source_offset"), bad), pc.filter(raw, bad),
                                      pc.filter(reasons, bad), self.masker)
        for reason, count in Counter(quarantine.column("reason").to_pylist()).items():
            stats[f"quarantine.{reason}"] += count
        pii: Counter = Counter()
        message = self.masker.mask_array(where(parsed.content, ok), pii)
        for kind, count in pii.items():
            stats[f"pii.{kind}"] += count
        timings["mask"] += time.perf_counter() - clock
        clock = time.perf_counter()
        good = where(lines.drop_columns(["raw"]), ok)
        ts = where(parsed.ts, ok)
        n = good.num_rows
        columns = {
            "event_id": good.column("event_id").combine_chunks() if "event_id" in good.column_names
            else self._event_ids(good),
            "ts": ts, "service": pa.repeat(pa.scalar(spec.service, pa.string()), n), "level": where(parsed.level, ok),
            "message": message, "source": self.masker.mask_distinct(good.column("source")),
            "source_offset": good.column("source_offset").combine_chunks(),
            "year": pa.repeat(pa.scalar(year, pa.int32()), n) if year else pc.cast(pc.year(ts), pa.int32()),
            "component": self.masker.mask_distinct(where(parsed.component, ok)),
        }
        timings["arrow"] += time.perf_counter() - clock
        return Prepared(spec.service, columns, message, quarantine, stats, timings)

    def complete(self, prep: Prepared, *, match_first: bool = False) -> Transformed:
        """Mine a prepared batch (in batch order: ids depend on it), fit its params and assemble the ``logs``
        rows."""
        clock = time.perf_counter()
        assigned = self.registry.miner(prep.service).mine(prep.message, match_first=match_first)
        prep.timings["mine"] += time.perf_counter() - clock
        if assigned.unfitted:
            prep.stats["params.unfitted"] += assigned.unfitted
        rows = pa.table({**prep.columns, "template_id": assigned.ids, "params": assigned.params}
                        ).select(LOGS_SCHEMA.names).cast(LOGS_SCHEMA)
        prep.stats["rows"] += rows.num_rows
        return Transformed(rows, prep.quarantine, prep.stats, prep.timings)

    @staticmethod
    def _event_ids(lines: pa.Table) -> pa.Array:
        sources = lines.column("source").combine_chunks()
        offsets = lines.column("source_offset").combine_chunks()
        uniq = pc.unique(sources).to_pylist()
        if not uniq:
            return pa.array([], pa.string())
        if len(uniq) == 1:
            return event_ids(uniq[0], offsets)
        keys = pa.array([source_key(s) for s in uniq])
        prefix = pc.take(keys, pc.index_in(sources, value_set=pa.array(uniq)))
        return pc.binary_join_element_wise(prefix, pc.cast(offsets, pa.string()), ":")
