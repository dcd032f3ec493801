"""New-template alerts: a template first seen after T1 that the backfill never saw, recorded in
``template_events`` with a masked sample line, the nearest runbook and a severity.

A template that only generalises a known one is not new: when Drain widens a backfill template, the old id
becomes an alias of the new one (``template_aliases``), and such a target is skipped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

import duckdb

from logpilot_dagster.storage.warehouse import ensure_schema, insert_missing

#: One ``template_events`` row from an event dict's named parameters.
EVENT_ROW = ("SELECT $kind AS kind, $template_id AS template_id, $service AS service, "
             "$window_start AS window_start, $window_end AS window_end, $observed AS observed, $expected AS expected, $score AS score, "
             "$severity AS severity, $sample AS sample, $runbook AS runbook, $detail AS detail, "
             "now() AS detected_at")

SEVERITIES = ("low", "medium", "high", "critical")
_LEVEL_RANK = {"FATAL": 2, "CRITICAL": 2, "ERROR": 2, "SEVERE": 2, "E": 2, "F": 2, "WARN": 1, "WARNING": 1, "W": 1}
_CRITICALITY_BUMP = {"critical": 1, "high": 1}

#: Finds the runbook nearest to a line: (service, text) -> runbook name or None.
RunbookFinder = Callable[[str, str], "str | None"]


def severity(level: str | None, criticality: str | None) -> str:
    """The line's level sets the base (info: low, warn: medium, error: high); a critical or high service
    raises it one step."""
    rank = _LEVEL_RANK.get((level or "").upper(), 0) + _CRITICALITY_BUMP.get((criticality or "").lower(), 0)
    return SEVERITIES[min(rank, len(SEVERITIES) - 1)]


def detect_new_templates(con: duckdb.DuckDBPyConnection, t1: datetime,
                         find_runbook: RunbookFinder | None = None) -> list[dict]:
    """Record every template whose first hour in ``template_hourly`` is after T1 and that no backfill year
    holds (directly or through an alias); returns the events recorded by this call (idempotent)."""
    ensure_schema(con)
    fresh = con.execute("""
        WITH known AS (SELECT DISTINCT template_id FROM template_hourly WHERE origin LIKE 'backfill:%'),
        generalised AS (SELECT a.template_id FROM template_aliases a JOIN known k ON k.template_id = a.alias_id),
        live AS (SELECT template_id, service, min(hour) AS first_hour, max(hour) AS last_hour, sum(lines) AS n
                 FROM template_hourly WHERE origin = 'live' GROUP BY ALL)
        SELECT l.template_id, l.service, l.first_hour, l.last_hour, l.n, c.criticality
        FROM live l LEFT JOIN system_catalog c ON c.system_name = l.service
        WHERE l.template_id NOT IN (SELECT template_id FROM known)
          AND l.template_id NOT IN (SELECT template_id FROM generalised)
          AND NOT EXISTS (SELECT 1 FROM template_events e
                          WHERE e.kind = 'new_template' AND e.template_id = l.template_id AND e.service = l.service)
        ORDER BY l.first_hour, l.template_id""").fetchall()
    events = []
    for template_id, service, first_hour, last_hour, count, criticality in fresh:
        sample = con.execute("SELECT message, level, min(ts) FROM logs WHERE template_id = ? AND service = ? "
                             "AND ts > ? GROUP BY ALL ORDER BY 3 LIMIT 1", [template_id, service, t1]).fetchone()
        message, level = (sample[0], sample[1]) if sample else (None, None)
        first = sample[2] if sample else first_hour
        runbook = find_runbook(service, message) if (find_runbook and message) else None
        event = {"kind": "new_template", "template_id": template_id, "service": service, "window_start": first,
                 "window_end": last_hour, "observed": float(count), "expected": 0.0, "score": None,
                 "severity": severity(level, criticality), "sample": message, "runbook": runbook,
                 "detail": f"first seen {first} after T1 {t1}; {count} lines since"}
        insert_missing(con, "template_events", "kind, template_id, service, window_start", EVENT_ROW, event)
        events.append(event)
    return events
