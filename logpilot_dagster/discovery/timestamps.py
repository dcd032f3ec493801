"""A library of timestamp layouts: an RE2-safe regex that finds the stamp and the DuckDB ``strptime`` layout
(or ``epoch`` / ``epoch_ms``) that parses it. Most specific first, so the first layout that fits wins."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from logpilot_dagster.ingest.formats import EPOCH, EPOCH_MS, needs_year, parse_timestamps


@dataclass(frozen=True)
class TimeLayout:
    name: str
    regex: str  # no capturing groups
    layout: str

    @property
    def compiled(self) -> re.Pattern:
        return _compiled(self.regex)


_CACHE: dict[str, re.Pattern] = {}


def _compiled(regex: str) -> re.Pattern:
    if regex not in _CACHE:
        _CACHE[regex] = re.compile(regex)
    return _CACHE[regex]


_D4, _D2, _HMS = r"\d{4}", r"\d{2}", r"\d{2}:\d{2}:\d{2}"
_MON, _WDAY = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)", r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_ZONE = r"(?:Z|[+-]\d{2}:?\d{2})"

LAYOUTS: tuple[TimeLayout, ...] = (
    TimeLayout("iso8601 ns zone", rf"{_D4}-{_D2}-{_D2}T{_HMS}\.\d{{7,9}}Z", "%Y-%m-%dT%H:%M:%S.%nZ"),
    TimeLayout("iso8601 frac Z", rf"{_D4}-{_D2}-{_D2}T{_HMS}\.\d{{1,6}}Z", "%Y-%m-%dT%H:%M:%S.%fZ"),
    TimeLayout("iso8601 frac offset", rf"{_D4}-{_D2}-{_D2}T{_HMS}\.\d{{1,6}}[+-]\d{{2}}:?\d{{2}}",
               "%Y-%m-%dT%H:%M:%S.%f%z"),
    TimeLayout("iso8601 Z", rf"{_D4}-{_D2}-{_D2}T{_HMS}Z", "%Y-%m-%dT%H:%M:%SZ"),
    TimeLayout("iso8601 offset", rf"{_D4}-{_D2}-{_D2}T{_HMS}[+-]\d{{2}}:?\d{{2}}", "%Y-%m-%dT%H:%M:%S%z"),
    TimeLayout("iso8601 comma ms", rf"{_D4}-{_D2}-{_D2}T{_HMS},\d{{3}}", "%Y-%m-%dT%H:%M:%S,%g"),
    TimeLayout("iso8601 frac", rf"{_D4}-{_D2}-{_D2}T{_HMS}\.\d{{1,6}}", "%Y-%m-%dT%H:%M:%S.%f"),
    TimeLayout("iso8601", rf"{_D4}-{_D2}-{_D2}T{_HMS}", "%Y-%m-%dT%H:%M:%S"),
    TimeLayout("date time comma ms", rf"{_D4}-{_D2}-{_D2} {_HMS},\d{{3}}", "%Y-%m-%d %H:%M:%S,%g"),
    TimeLayout("date time frac offset", rf"{_D4}-{_D2}-{_D2} {_HMS}\.\d{{1,6}} ?[+-]\d{{2}}:?\d{{2}}",
               "%Y-%m-%d %H:%M:%S.%f%z"),
    TimeLayout("date time frac", rf"{_D4}-{_D2}-{_D2} {_HMS}\.\d{{1,6}}", "%Y-%m-%d %H:%M:%S.%f"),
    TimeLayout("date time", rf"{_D4}-{_D2}-{_D2} {_HMS}", "%Y-%m-%d %H:%M:%S"),
    TimeLayout("db2 / BGL", rf"{_D4}-{_D2}-{_D2}-\d{{2}}\.\d{{2}}\.\d{{2}}\.\d{{1,6}}", "%Y-%m-%d-%H.%M.%S.%f"),
    TimeLayout("slashed date time", rf"{_D4}/{_D2}/{_D2} {_HMS}", "%Y/%m/%d %H:%M:%S"),
    TimeLayout("short slashed date time", rf"{_D2}/{_D2}/{_D2} {_HMS}", "%y/%m/%d %H:%M:%S"),
    TimeLayout("yymmdd hhmmss", r"\d{6} \d{6}", "%y%m%d %H%M%S"),
    TimeLayout("compact date-time ms", r"\d{8}-\d{1,2}:\d{1,2}:\d{1,2}:\d{1,3}", "%Y%m%d-%H:%M:%S:%g"),
    TimeLayout("apache error / ctime", rf"{_WDAY} {_MON} +\d{{1,2}} {_HMS} {_D4}",
               "%a %b %d %H:%M:%S %Y"),
    TimeLayout("apache / nginx access", rf"\d{{2}}/{_MON}/{_D4}:{_HMS} [+-]\d{{4}}", "%d/%b/%Y:%H:%M:%S %z"),
    TimeLayout("windows event", r"\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}:\d{2} [AP]M", "%m/%d/%Y %I:%M:%S %p"),
    TimeLayout("java util logging", rf"{_MON} \d{{1,2}}, {_D4} \d{{1,2}}:\d{{2}}:\d{{2}} [AP]M",
               "%b %d, %Y %I:%M:%S %p"),
    TimeLayout("tomcat", rf"{_D2}-{_MON}-{_D4} {_HMS}\.\d{{3}}", "%d-%b-%Y %H:%M:%S.%g"),
    TimeLayout("european date time", rf"{_D2}\.{_D2}\.{_D4} {_HMS}", "%d.%m.%Y %H:%M:%S"),
    TimeLayout("epoch ms", r"1\d{12}", EPOCH_MS),
    TimeLayout("epoch seconds", r"1\d{9}(?:\.\d{1,9})?", EPOCH),
    # Layouts without a year: the year comes from the path (or the partition) at parse time.
    TimeLayout("syslog frac", rf"{_MON} +\d{{1,2}} {_HMS}\.\d{{1,6}}", "%b %d %H:%M:%S.%f"),
    TimeLayout("syslog (no year)", rf"{_MON} +\d{{1,2}} {_HMS}", "%b %d %H:%M:%S"),
    TimeLayout("android logcat", rf"{_D2}-{_D2} {_HMS}\.\d{{3}}", "%m-%d %H:%M:%S.%f"),
    TimeLayout("month.day time", rf"{_D2}\.{_D2} {_HMS}", "%m.%d %H:%M:%S"),
)


def parse_rate(values: list[str], layout: str) -> float:
    """Share of ``values`` that DuckDB parses with ``layout`` (a leap year stands in for a missing one)."""
    if not values:
        return 0.0
    ts = parse_timestamps(pa.array(values, pa.string()), layout, 2000 if needs_year(layout) else None)
    return pc.sum(pc.is_valid(ts)).as_py() / len(values)


def full_match_layout(values: list[str], min_rate: float) -> TimeLayout | None:
    """The first layout whose regex full-matches and parses at least ``min_rate`` of ``values``."""
    if not values:
        return None
    for layout in LAYOUTS:
        hits = [v for v in values if layout.compiled.fullmatch(v)]
        if len(hits) >= min_rate * len(values) and parse_rate(hits, layout.layout) * len(hits) >= min_rate * len(values):
            return layout
    return None
