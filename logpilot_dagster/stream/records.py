"""Kafka records -> lines for the transformer, with bad input set aside for ``quarantine`` (vectorised).

A record is bad when its payload is empty, larger than 64 KiB or not UTF-8, or when its event time (the record
timestamp, which the collector sets from the line) lies before 2000 or more than a day ahead. Records at or
before T1 were already backfilled and are skipped. Each line's event id is derived from its Kafka coordinates
and timestamp, so a replay of the same record always gets the same id (and a broker that lost its log and
reuses offsets never produces ids that collide with older rows).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc


MAX_RECORD_BYTES = 64 * 1024
#: How much of a bad payload is kept in ``quarantine.raw``.
QUARANTINE_RAW_CHARS = 4096
EARLIEST_EVENT_MS = int(datetime(2000, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
FUTURE_SLACK_MS = 24 * 3600 * 1000
EMPTY, OVERSIZE, NOT_UTF8, BAD_TIME = "empty_record", "oversize_record", "not_utf8", "event_time_out_of_range"
NO_KEY = "unknown"


def fingerprint(timestamp: int | None, value: bytes | None) -> str:
    """Identifies a record within its partition beyond its offset: a broker that lost its log and took new
    records since hands out the same offsets for other records."""
    return f"{timestamp}:{zlib.crc32(value or b''):08x}"


def record_source(topic: str, partition: int) -> str:
    """``logs.source`` / ``quarantine.source`` of a Kafka record: the topic and partition its offset belongs to."""
    return f"{topic}/{partition}"


class PendingRecords:
    """Consumed records waiting for their batch, kept as the consumer's columns (``broker.consumer.RECORD_SCHEMA``):
    a backlog of Python record objects would make every full garbage collection walk it."""

    def __init__(self) -> None:
        self._tables: list[pa.Table] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, records: pa.Table) -> None:
        self._tables.append(records)
        self._count += records.num_rows

    def take(self) -> pa.Table:
        """All pending records as one table; leaves none pending."""
        from logpilot_dagster.broker.consumer import RECORD_SCHEMA  # the consumer's side: its client is loaded

        table = pa.concat_tables(self._tables) if self._tables else RECORD_SCHEMA.empty_table()
        self.clear()
        return table

    def clear(self) -> None:
        self._tables, self._count = [], 0


@dataclass
class LineGroup:
    """Lines of one source name (record key) and one event year, ready for the transformer: columns source
    (topic/partition), source_offset, raw, event_id."""

    source_name: str
    year: int
    lines: pa.Table


@dataclass
class Screened:
    groups: list[LineGroup]
    quarantine: pa.Table
    skipped_before_t1: int
    next_offsets: dict[int, int]
    last_record: dict[int, str]  # per partition, the ``fingerprint`` of the record before its next offset


def _utf8(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(text, ok): the values as strings and which of them were valid UTF-8 (Python only when some are not)."""
    try:
        return values.cast(pa.string()), pa.array([True] * len(values))
    except pa.ArrowInvalid:
        texts, ok = [], []
        for value in values.to_pylist():
            try:
                texts.append(value.decode("utf-8"))
                ok.append(True)
            except UnicodeDecodeError:
                texts.append(None)
                ok.append(False)
        return pa.array(texts, pa.string()), pa.array(ok)


def _reasons(table: pa.Table, now_ms: int) -> tuple[pa.Array, pa.Array]:
    """(reason or null per record, text per record); the reasons are only spelt out when some record is bad."""
    value = pc.fill_null(table.column("value").combine_chunks(), b"")
    oversize = pc.greater(pc.binary_length(value), MAX_RECORD_BYTES)
    if pc.any(oversize).as_py():
        value = pc.if_else(oversize, b"", value)
    text, utf8_ok = _utf8(value)
    text = pc.utf8_rtrim(text, characters="\r\n")
    empty = pc.fill_null(pc.or_(pc.equal(pc.binary_length(text), 0), pc.utf8_is_space(text)), False)
    ts = table.column("timestamp")
    bad_time = pc.or_(pc.less(ts, EARLIEST_EVENT_MS), pc.greater(ts, now_ms + FUTURE_SLACK_MS))
    null = pa.scalar(None, pa.string())
    if not pc.any(pc.or_(pc.or_(oversize, pc.invert(utf8_ok)), pc.or_(empty, bad_time))).as_py():
        return pa.nulls(len(value), pa.string()), text
    reason = pc.if_else(bad_time, BAD_TIME, null)
    reason = pc.if_else(pc.and_(utf8_ok, empty), EMPTY, reason)
    reason = pc.if_else(pc.invert(utf8_ok), NOT_UTF8, reason)
    reason = pc.if_else(oversize, OVERSIZE, reason)
    return reason, text


def _bad_raw(values: list[bytes | None]) -> list[str]:
    """Bad payloads as text for ``quarantine.raw``: replacement-decoded (then masked by ``quarantine_table``)."""
    return [(v or b"")[:QUARANTINE_RAW_CHARS].decode("utf-8", "replace") for v in values]


def screen(table: pa.Table, topic: str, t1_us: int | None, now_ms: int) -> Screened:
    """Split the consumer's records (``PendingRecords.take``) into line groups, quarantine rows and skips (at or
    before T1).

    Record times are whole milliseconds (truncated): a record in T1's own millisecond may still follow T1, so
    it is kept here and the parsed event time, at full precision, decides."""
    from logpilot_dagster.ingest.transform import QUARANTINE_SCHEMA, quarantine_table, where  # the stage's

    next_offsets, last_record = {}, {}
    if table.num_rows:  # records come in offset order per partition
        with_nulls = pc.ScalarAggregateOptions(skip_nulls=False)
        last = table.group_by("partition", use_threads=False).aggregate(
            [("offset", "last"), ("timestamp", "last", with_nulls), ("value", "last", with_nulls)]).to_pylist()
        next_offsets = {row["partition"]: row["offset_last"] + 1 for row in last}
        last_record = {row["partition"]: fingerprint(row["timestamp_last"], row["value_last"]) for row in last}
    reason, text = _reasons(table, now_ms)
    bad = pc.is_valid(reason)
    bad_rows = table.filter(bad)
    sources = [record_source(topic, p) for p in bad_rows.column("partition").to_pylist()]
    quarantine = quarantine_table(sources, bad_rows.column("offset").to_pylist(),
                                  _bad_raw(bad_rows.column("value").to_pylist()), pc.filter(reason, bad).to_pylist())
    good = pc.invert(bad)
    if t1_us is not None:
        after_t1 = pc.greater_equal(table.column("timestamp"), t1_us // 1000)
        skipped = pc.sum(pc.and_(good, pc.invert(after_t1))).as_py() or 0
        good = pc.and_(good, after_t1)
    else:
        skipped = 0
    rows = where(table.select(["partition", "offset", "timestamp", "key"]).append_column("text", text), good)
    keys = pc.dictionary_encode(pc.fill_null(rows.column("key").combine_chunks(), NO_KEY.encode())
                                .cast(pa.string(), safe=False))
    years = pc.year(pc.cast(rows.column("timestamp"), pa.timestamp("ms")))
    # One stable sort on (key, year) codes, then a slice per group: records keep their order within a group.
    codes = pc.add(pc.multiply(pc.cast(keys.indices, pa.int64()), 10_000), pc.cast(years, pa.int64()))
    order = pc.sort_indices(codes)
    rows, codes = rows.drop_columns(["key"]).take(order), pc.take(codes, order)
    names = keys.dictionary.to_pylist()
    groups, start = [], 0
    counted = pc.value_counts(codes)
    for code, count in zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist()):
        groups.append(LineGroup(names[code // 10_000], code % 10_000, _lines(topic, rows.slice(start, count))))
        start += count
    return Screened(groups, quarantine.cast(QUARANTINE_SCHEMA), skipped, next_offsets, last_record)


def _lines(topic: str, part: pa.Table) -> pa.Table:
    from logpilot_dagster.ingest.transform import source_key

    partitions = part.column("partition").combine_chunks()
    present = pc.unique(partitions)
    position = pc.index_in(partitions, value_set=present)
    source = pc.take(pa.array([record_source(topic, p) for p in present.to_pylist()], pa.string()), position)
    prefix = pc.take(pa.array([source_key(record_source(topic, p)) for p in present.to_pylist()], pa.string()),
                     position)
    offsets = part.column("offset")
    event_id = pc.binary_join_element_wise(prefix, pc.cast(offsets, pa.string()), ":")
    event_id = pc.binary_join_element_wise(event_id, pc.cast(part.column("timestamp"), pa.string()), "@")
    return pa.table({"source": source, "source_offset": offsets, "raw": part.column("text"), "event_id": event_id})
