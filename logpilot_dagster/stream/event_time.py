"""Event time of raw lines via the source's declared header format (the same parser the backfill uses)."""

from __future__ import annotations

import time

import pyarrow as pa
import pyarrow.compute as pc

from logpilot_dagster.ingest.formats import LoghubFormat, needs_year
from logpilot_dagster.ingest.sources import SourceSpec

DAY_MS = 24 * 3600 * 1000


def ensure_layout(spec: SourceSpec, raw: pa.Array, year: int) -> bool:
    """Detect a missing time layout of a Loghub-style source from sample lines (kept on ``spec``)."""
    fmt = spec.header_format()
    if spec.ts_layout or not isinstance(fmt, LoghubFormat):
        return True
    spec.ts_layout = fmt.detect_layout(raw.slice(0, 500), year)
    return spec.ts_layout is not None


def event_times_ms(spec: SourceSpec | None, lines: list[str], now_ms: int | None = None) -> list[int]:
    """Epoch milliseconds per line: the parsed header time, else ``now`` (undeclared source, no match)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if spec is None or not lines:
        return [now_ms] * len(lines)
    raw = pa.array(lines, pa.string())
    year = time.gmtime(now_ms // 1000).tm_year
    if not ensure_layout(spec, raw, year):
        return [now_ms] * len(lines)
    fmt = spec.header_format()
    millis = _millis(fmt.parse(raw, year).ts)
    if spec.ts_layout and needs_year(spec.ts_layout):  # syslog-style: a time that would lie ahead belongs to last year (Dec 31 in Jan)
        ahead = pc.greater(millis, now_ms + DAY_MS)
        if pc.any(ahead).as_py():
            millis = pc.if_else(ahead, _millis(fmt.parse(raw, year - 1).ts), millis)
    return pc.fill_null(millis, now_ms).to_pylist()


def _millis(ts: pa.Array) -> pa.Array:
    return pc.divide(pc.cast(pc.cast(ts, pa.timestamp("us")), pa.int64()), 1000)
