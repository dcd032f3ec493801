"""What changed between two periods: templates new in B, gone since A, and the biggest rate shifts.

A period is spelled as a year (``2024``), a month (``2024-03``), a day (``2024-03-04``), an hour
(``2024-03-04T10``) or a range ``START..END`` of those (END inclusive at its own precision). Rates are lines
per hour, so periods of different lengths compare fairly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb

_SPELLINGS = (("%Y-%m-%dT%H", "hour"), ("%Y-%m-%d", "day"), ("%Y-%m", "month"), ("%Y", "year"))


def _next(start: datetime, unit: str) -> datetime:
    if unit == "hour":
        return start + timedelta(hours=1)
    if unit == "day":
        return start + timedelta(days=1)
    if unit == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start.replace(year=start.year + 1)


def _point(text: str) -> tuple[datetime, datetime]:
    for fmt, unit in _SPELLINGS:
        try:
            start = datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
        return start, _next(start, unit)
    raise ValueError(f"not a period: {text!r} (use 2024, 2024-03, 2024-03-04, 2024-03-04T10 or START..END)")


def parse_period(text: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of a period spelling."""
    first, _, last = text.partition("..")
    start, end = _point(first)
    if last:
        end = _point(last)[1]
    if end <= start:
        raise ValueError(f"empty period: {text!r}")
    return start, end


@dataclass
class Changes:
    a: tuple[datetime, datetime]
    b: tuple[datetime, datetime]
    service: str | None
    new: list[dict] = field(default_factory=list)
    gone: list[dict] = field(default_factory=list)
    shifts: list[dict] = field(default_factory=list)

    def render(self) -> str:
        def span(p):
            return f"{p[0]:%Y-%m-%d %H:%M} .. {p[1]:%Y-%m-%d %H:%M}"

        lines = [f"A = {span(self.a)}, B = {span(self.b)}" + (f", service {self.service}" if self.service else "")]
        for title, items, fmt in (
                ("new in B", self.new, "{template_id} {service}: {lines_b} lines  {template}"),
                ("gone since A", self.gone, "{template_id} {service}: {lines_a} lines in A  {template}"),
                ("biggest rate shifts (lines/hour)", self.shifts,
                 "{template_id} {service}: {rate_a:.3g} -> {rate_b:.3g} ({lines_a} -> {lines_b} lines)  {template}")):
            lines.append(f"{title}: {len(items)}")
            lines.extend("  " + fmt.format(**item) for item in items)
        return "\n".join(lines)


def what_changed(con: duckdb.DuckDBPyConnection, a: str, b: str, service: str | None = None,
                 top: int = 10) -> Changes:
    """Compare periods ``a`` and ``b`` over ``template_hourly`` (one row per template and service)."""
    (a0, a1), (b0, b1) = parse_period(a), parse_period(b)
    hours_a, hours_b = (a1 - a0).total_seconds() / 3600, (b1 - b0).total_seconds() / 3600
    cur = con.execute("""
        SELECT h.template_id, h.service, any_value(t.template) AS template,
               sum(h.lines) FILTER (WHERE h.hour >= $a0 AND h.hour < $a1) AS lines_a,
               sum(h.lines) FILTER (WHERE h.hour >= $b0 AND h.hour < $b1) AS lines_b
        FROM template_hourly h LEFT JOIN templates t USING (template_id)
        WHERE (($service::VARCHAR) IS NULL OR h.service = $service)
          AND ((h.hour >= $a0 AND h.hour < $a1) OR (h.hour >= $b0 AND h.hour < $b1))
        GROUP BY ALL""", {"a0": a0, "a1": a1, "b0": b0, "b1": b1, "service": service})
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    for row in rows:
        row["lines_a"], row["lines_b"] = row["lines_a"] or 0, row["lines_b"] or 0
        row["rate_a"], row["rate_b"] = row["lines_a"] / hours_a, row["lines_b"] / hours_b
        row["template"] = row["template"] or ""
    changes = Changes((a0, a1), (b0, b1), service)
    changes.new = sorted((r for r in rows if not r["lines_a"]), key=lambda r: -r["lines_b"])[:top]
    changes.gone = sorted((r for r in rows if not r["lines_b"]), key=lambda r: -r["lines_a"])[:top]
    both = [r for r in rows if r["lines_a"] and r["lines_b"]]
    changes.shifts = sorted(both, key=lambda r: -abs(math.log(r["rate_b"] / r["rate_a"])))[:top]
    return changes
