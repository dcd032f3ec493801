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


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def changes_query(a: tuple[datetime, datetime], b: tuple[datetime, datetime], service: str | None = None) -> str:
    """One row per template and service seen in either period: ``template_id, service, template, lines_a,
    lines_b``, the biggest relative changes first (plain SQL with literals, so the agent's guard can run it)."""
    (a0, a1), (b0, b1) = ((f"TIMESTAMP '{t.isoformat(sep=' ')}'" for t in p) for p in (a, b))
    in_a, in_b = f"h.hour >= {a0} AND h.hour < {a1}", f"h.hour >= {b0} AND h.hour < {b1}"
    scope = f"h.service = {_literal(service)} AND " if service else ""
    return (f"SELECT h.template_id, h.service, any_value(t.template) AS template, "
            f"coalesce(sum(h.lines) FILTER (WHERE {in_a}), 0) AS lines_a, "
            f"coalesce(sum(h.lines) FILTER (WHERE {in_b}), 0) AS lines_b "
            f"FROM template_hourly h LEFT JOIN templates t ON t.template_id = h.template_id "
            f"WHERE {scope}(({in_a}) OR ({in_b})) GROUP BY h.template_id, h.service "
            f"ORDER BY abs(ln((lines_b + 1) / (lines_a + 1))) DESC, h.template_id")


def split_changes(rows: list[dict], a: tuple[datetime, datetime], b: tuple[datetime, datetime],
                  service: str | None = None, top: int = 10) -> Changes:
    """Rows of :func:`changes_query` as new, gone and shifted templates (rates in lines per hour)."""
    hours_a, hours_b = ((p[1] - p[0]).total_seconds() / 3600 for p in (a, b))
    for row in rows:
        row["rate_a"], row["rate_b"] = row["lines_a"] / hours_a, row["lines_b"] / hours_b
        row["template"] = row["template"] or ""
    changes = Changes(a, b, service)
    changes.new = sorted((r for r in rows if not r["lines_a"]), key=lambda r: -r["lines_b"])[:top]
    changes.gone = sorted((r for r in rows if not r["lines_b"]), key=lambda r: -r["lines_a"])[:top]
    both = [r for r in rows if r["lines_a"] and r["lines_b"]]
    changes.shifts = sorted(both, key=lambda r: -abs(math.log(r["rate_b"] / r["rate_a"])))[:top]
    return changes


def what_changed(con: duckdb.DuckDBPyConnection, a: str, b: str, service: str | None = None,
                 top: int = 10) -> Changes:
    """Compare periods ``a`` and ``b`` (spellings as in :func:`parse_period`) over ``template_hourly``."""
    periods = parse_period(a), parse_period(b)
    cur = con.execute(changes_query(*periods, service))
    cols = [d[0] for d in cur.description]
    return split_changes([dict(zip(cols, r)) for r in cur.fetchall()], *periods, service, top)
