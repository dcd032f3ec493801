"""Event time of raw lines via the source's declared header format (the same parser the backfill uses)."""

from __future__ import annotations

import time

import pyarrow as pa
import pyarrow.compute as pc

from logpilot_dagster.formats import LoghubFormat
from logpilot_dagster.sources import SourceSpec


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
    ts = spec.header_format().parse(raw, year).ts
    millis = pc.divide(pc.cast(pc.cast(ts, pa.timestamp("us")), pa.int64()), 1000)
    return pc.fill_null(millis, now_ms).to_pylist()
