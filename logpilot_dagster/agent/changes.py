"""Questions about change, answered from the template analytics tables through the same guard as any SQL:

- *unusual*: "what is unusual / new in payments-api since yesterday": the ``template_events`` recorded in
  the range (new templates, spikes, drops, error-share jumps), with counts and the runbook found;
- *changed*: "what changed between last Monday and today": templates new in B, gone since A and the biggest
  rate shifts (``analytics.changes``);
- *cost*: "which templates cost the most bytes": bytes and lines per template (or service) from
  ``template_hourly``.

Ranges are read against the data's latest time, like every other question; without one, *unusual* looks at
the last day and *changed* compares the last day with the day before.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from logpilot_dagster.agent.planner import _NUM, DEFAULT_TOP, Plan, _number, describe
from logpilot_dagster.agent.question import ParsedQuestion
from logpilot_dagster.agent.timeparse import find_periods
from logpilot_dagster.analytics.changes import changes_query, split_changes

CUES = {
    "cost": r"\bbytes\b|\bcosts?\s+(?:us\s+)?(?:the\s+)?most\b|\bmost\s+(?:expensive|costly)\b|\bcostliest\b"
            r"|\bstorage\s+cost|\bdrives?\s+(?:the\s+)?(?:log\s+)?volume",
    "changed": r"\bwhat(?:'s|\s+has|\s+have)?\s+changed\b|\bwhat\s+is\s+different\b",
    "unusual": r"\bunusual\b|\banomal|\bnew\s+(?:log\s+)?(?:templates?|patterns?|kinds?\s+of\s+(?:lines?|messages?))\b"
               r"|\bwhat(?:'s|\s+is)\s+new\b|\bnever\s+(?:been\s+)?seen\b",
}
DAY = timedelta(days=1)


def change_kind(question: str) -> str | None:
    """Which kind of change question this is, or ``None`` for every other question."""
    text = question.lower()
    return next((kind for kind, cue in CUES.items() if re.search(cue, text)), None)


def _stamp(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.isoformat(sep=' ')}'"


def _services(parsed: ParsedQuestion, column: str) -> list[str]:
    names = parsed.entities.services
    return [f"{column} IN ({', '.join(repr(n) for n in names)})"] if names else []


def _day_of(moment: datetime) -> tuple[datetime, datetime]:
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + DAY


def _period(text: str, now: datetime) -> tuple[datetime, datetime] | None:
    found = [p.range for p in find_periods(text, now) if p.range.start and p.range.end]
    return (found[0].start, found[0].end) if found else None


def periods(parsed: ParsedQuestion, now: datetime) -> tuple[tuple[datetime, datetime], tuple[datetime, datetime]]:
    """(A, B) for a *changed* question: "between A and B" or two named periods; one period against the one as
    long before it; else yesterday against today."""
    sides = re.search(r"\b(?:between|from)\s+(.+?)\s+(?:and|to|vs\.?|versus)\s+(.+?)[?.!]*$", parsed.text.lower())
    if sides:
        a, b = _period(sides.group(1), now), _period(sides.group(2), now)
        if a and b:
            return a, b
    found = [p.range for p in find_periods(parsed.text, now) if p.range.start and p.range.end]
    if len(found) >= 2:
        return (found[0].start, found[0].end), (found[1].start, found[1].end)
    if found:
        start, end = found[0].start, found[0].end
        return (start - (end - start), start), (start, end)
    today = _day_of(now)
    return (today[0] - DAY, today[0]), today


def plan_changes(kind: str, parsed: ParsedQuestion, now: datetime) -> Plan:
    """The guarded SQL for a change question of ``kind``."""
    span = parsed.time.range if parsed.time else None
    if kind == "changed":
        a, b = periods(parsed, now)
        service = parsed.entities.services[0] if len(parsed.entities.services) == 1 else None
        label = f"{a[0]:%Y-%m-%d %H:%M}..{a[1]:%Y-%m-%d %H:%M} vs {b[0]:%Y-%m-%d %H:%M}..{b[1]:%Y-%m-%d %H:%M}"
        return Plan(changes_query(a, b, service), "changed", f"template changes{' of ' + service if service else ''}, "
                    f"{label}", "analytics")
    if kind == "unusual":
        start = span.start if span and span.start else now - DAY
        where = [f"e.window_end > {_stamp(start)}"] + ([f"e.window_start < {_stamp(span.end)}"] if span and span.end
                                                        else []) + _services(parsed, "e.service")
        sql = ("SELECT e.kind, e.template_id, e.service, e.severity, e.observed, e.expected, e.window_start, "
               "e.runbook, t.template FROM template_events e LEFT JOIN templates t ON t.template_id = e.template_id "
               f"WHERE {' AND '.join(where)} ORDER BY e.window_start, e.kind, e.template_id")
        scope = describe(parsed, "new templates and anomalies")
        return Plan(sql, "unusual", scope if span else f"{scope} since {start:%Y-%m-%d %H:%M}", "analytics")
    by_service = bool(re.search(r"\bservices?\b|\bsystems?\b", parsed.text.lower())) and \
        not re.search(r"\btemplates?\b|\bmessages?\b|\blines?\b", parsed.text.lower())
    key = "h.service" if by_service else "h.template_id, h.service"
    where = (span.sql("h.hour") if span else []) + _services(parsed, "h.service")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    limit = _number(r"\b(?:top|which|what)\s+" + _NUM, parsed.text.lower()) or DEFAULT_TOP
    text = "" if by_service else ", any_value(t.template) AS template"
    join = "" if by_service else " LEFT JOIN templates t ON t.template_id = h.template_id"
    sql = (f"SELECT {key}, sum(h.bytes) AS bytes, sum(h.lines) AS lines{text} FROM template_hourly h{join}{clause} "
           f"GROUP BY {key} ORDER BY bytes DESC, {key} LIMIT {limit}")
    return Plan(sql, "cost", describe(parsed, "bytes per " + ("service" if by_service else "template")), "analytics")


def describe_changes(parsed: ParsedQuestion, now: datetime, columns: list[str], rows: list[tuple]) -> str:
    """The answer to a *changed* question: new, gone and shifted templates with their counts."""
    a, b = periods(parsed, now)
    return split_changes([dict(zip(columns, row)) for row in rows], a, b).render()
