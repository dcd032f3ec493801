"""Frequency anomalies per template and error-share jumps per service, scored against years of history.

The latest window (``window_hours``, ending at the last complete hour) is compared with the same clock hours
on earlier days of the same kind (weekday or weekend) over ``baseline_weeks``: hour-of-day and weekly
seasonality without a model to fit. The score is a robust z-score on Anscombe-transformed counts,
``(a(x) - median(a(b))) / max(1.4826 * MAD(a(b)), 1)`` with ``a(n) = 2 * sqrt(n + 3/8)`` over the baseline
counts ``b``: the transform gives Poisson counts unit variance at any rate (so 26 lines where 11 are usual
is noise, 300 where 20 are usual is not), the median and MAD ignore the past incidents that inflate a mean and
standard deviation, and the floor of 1 keeps a perfectly flat series from turning one extra line into an
infinite score.

- ``spike``: z >= ``z_threshold``, at least ``spike_ratio`` times the median and at least ``min_count`` lines:
  the ratio keeps a busy template's small shifts (1,200 lines where 1,000 are usual: significant, not an
  incident) from paging anyone.
- ``drop``: zero lines in the window of a template present in at least ``steady_presence`` of the baseline
  windows with a median of at least ``min_count``.
- ``error_share``: a service's share of error lines rose by ``error_share_jump`` or more over its median.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import duckdb
import pydantic

from logpilot_dagster.analytics.new_templates import EVENT_ROW, severity
from logpilot_dagster.storage.warehouse import ensure_schema, insert_missing


class AnomalySettings(pydantic.BaseModel):
    """The detectors' thresholds (the Dagster asset's run config extends this model)."""

    model_config = pydantic.ConfigDict(frozen=True)

    window_hours: int = 1
    baseline_weeks: int = 8
    z_threshold: float = 4.0
    spike_ratio: float = 2.0
    min_count: int = 10
    steady_presence: float = 0.9
    error_share_jump: float = 0.2
    min_baseline_windows: int = 4


def _shifts(window_start: datetime, weeks: int) -> list[int]:
    """Day offsets of the baseline windows: same clock hours, same kind of day (weekday/weekend)."""
    weekend = window_start.weekday() >= 5
    return [k for k in range(1, 7 * weeks + 1) if ((window_start - timedelta(days=k)).weekday() >= 5) == weekend]


def latest_window_end(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The start of the newest hour in the series: the hour before it is the last complete one."""
    return con.execute("SELECT max(hour) FROM template_hourly").fetchone()[0]


def anscombe(n: float) -> float:
    return 2.0 * math.sqrt(n + 0.375)


def robust_z(x: float, median: float, mad: float) -> float:
    """Score of count ``x`` against the median and MAD of the Anscombe-transformed baseline counts."""
    return (anscombe(x) - median) / max(1.4826 * mad, 1.0)


_BASELINE = """
WITH shifts AS (SELECT unnest($shifts::INTEGER[]) AS k),
win AS (SELECT {keys}, sum(lines) AS n, sum(errors) AS e FROM template_hourly
        WHERE hour >= $start AND hour < $end GROUP BY ALL),
past AS (SELECT {keys}, k, sum(lines) AS n, sum(errors) AS e FROM template_hourly, shifts
         WHERE hour >= $start - k * INTERVAL 1 DAY AND hour < $end - k * INTERVAL 1 DAY GROUP BY ALL),
cand AS (SELECT {keys} FROM win UNION SELECT {keys} FROM past),
filled AS (SELECT {ckeys}, s.k, coalesce(p.n, 0) AS n, coalesce(p.e, 0) AS e
           FROM cand c CROSS JOIN shifts s LEFT JOIN past p ON {join} AND p.k = s.k)
SELECT {fkeys}, coalesce(w.n, 0) AS x, coalesce(w.e, 0) AS xe, median(f.n) AS med, mad(f.n) AS mad,
       median(2 * sqrt(f.n + 0.375)) AS tmed, mad(2 * sqrt(f.n + 0.375)) AS tmad,
       avg((f.n > 0)::INTEGER) AS presence,
       median(f.e / f.n) FILTER (WHERE f.n > 0) AS share_med, count(*) FILTER (WHERE f.n > 0) AS windows
FROM filled f LEFT JOIN win w ON {wjoin}
GROUP BY ALL
"""


def _baseline(con, keys: list[str], params: dict) -> list[dict]:
    sql = _BASELINE.format(keys=", ".join(keys), ckeys=", ".join(f"c.{k}" for k in keys),
                           fkeys=", ".join(f"f.{k}" for k in keys),
                           join=" AND ".join(f"p.{k} = c.{k}" for k in keys),
                           wjoin=" AND ".join(f"w.{k} = f.{k}" for k in keys))
    cur = con.execute(sql, params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def detect_anomalies(con: duckdb.DuckDBPyConnection, settings: AnomalySettings = AnomalySettings(),
                     window_end: datetime | None = None) -> list[dict]:
    """Score the window ending at ``window_end`` (default: the last complete hour) and record anomalies in
    ``template_events``; returns them (a re-run over the same window records nothing twice)."""
    ensure_schema(con)
    end = window_end or latest_window_end(con)
    if end is None:
        return []
    start = end - timedelta(hours=settings.window_hours)
    params = {"shifts": _shifts(start, settings.baseline_weeks), "start": start, "end": end}
    criticality = dict(con.execute("SELECT system_name, criticality FROM system_catalog").fetchall())
    found = []
    for row in _baseline(con, ["template_id", "service"], params):
        if row["windows"] < settings.min_baseline_windows:
            continue
        z = robust_z(row["x"], row["tmed"], row["tmad"])
        steady = row["presence"] >= settings.steady_presence and row["med"] >= settings.min_count
        if row["x"] >= max(settings.min_count, settings.spike_ratio * row["med"]) and z >= settings.z_threshold:
            kind, level = "spike", "ERROR" if row["xe"] else "WARN"
        elif row["x"] == 0 and steady:
            kind, level = "drop", "WARN"
        else:
            continue
        found.append({"kind": kind, "template_id": row["template_id"], "service": row["service"],
                      "observed": float(row["x"]), "expected": float(row["med"]), "score": round(z, 2),
                      "severity": severity(level, criticality.get(row["service"])),
                      "detail": f"{row['x']} lines vs median {row['med']:g} (MAD {row['mad']:g}) "
                                f"over {row['windows']} baseline windows"})
    for row in _baseline(con, ["service"], params):
        if row["windows"] < settings.min_baseline_windows or row["x"] < settings.min_count:
            continue
        share, usual = row["xe"] / row["x"], row["share_med"] or 0.0
        if share - usual >= settings.error_share_jump:
            found.append({"kind": "error_share", "template_id": "*", "service": row["service"],
                          "observed": round(share, 4), "expected": round(usual, 4), "score": round(share - usual, 4),
                          "severity": severity("ERROR", criticality.get(row["service"])),
                          "detail": f"error share {share:.1%} vs usual {usual:.1%}"})
    for event in found:
        event.update(window_start=start, window_end=end, sample=None, runbook=None)
        insert_missing(con, "template_events", "kind, template_id, service, window_start", EVENT_ROW, event)
    return found
