"""Template analytics on small constructed data: the series is incremental, and each detector fires exactly on
what it should (a detector that always or never fires fails these tests)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa
import pytest

from logpilot_dagster.analytics.anomalies import AnomalySettings, detect_anomalies
from logpilot_dagster.analytics.changes import parse_period, what_changed
from logpilot_dagster.analytics.new_templates import detect_new_templates, severity
from logpilot_dagster.analytics.series import update_series
from logpilot_dagster.storage.warehouse import ensure_schema

T1 = datetime(2025, 12, 31, 23, 0)


@pytest.fixture
def con(tmp_path):
    con = duckdb.connect(str(tmp_path / "logs.duckdb"))
    ensure_schema(con)
    con.execute("INSERT INTO system_catalog VALUES ('pay', 'Payments', 'x@example.com', 'critical'), "
                "('web', 'Web', 'y@example.com', 'low')")
    yield con
    con.close()


def _log(con, event_id, ts, service, template_id, source, offset, level="INFO", year=None):
    con.execute("INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?, [], ?, ?, ?, NULL)",
                [event_id, ts, service, level, template_id, f"msg of {template_id}", source, offset,
                 year or ts.year])


def test_series_is_incremental_and_idempotent(con):
    con.execute("INSERT INTO loaded_files VALUES (2025, 'f.log', '2026-01-01 00:00:00')")
    for i in range(3):
        _log(con, f"b{i}", datetime(2025, 6, 1, 10, i), "pay", "tA", "f.log", i)
    con.execute('INSERT INTO stream_offsets (topic, "partition", next_offset, updated_at) VALUES (\'t\', 0, 2, now())')
    _log(con, "l0", datetime(2026, 1, 1, 10, 5), "pay", "tA", "t/0", 0, year=2026)
    first = update_series(con)
    assert first.years_recomputed == [2025] and first.live_rows_added == 1
    _log(con, "l1", datetime(2026, 1, 1, 10, 6), "pay", "tA", "t/0", 1, year=2026)
    second = update_series(con)
    assert second.years_recomputed == [] and second.live_rows_added == 1
    assert update_series(con).live_rows_added == 0
    rows = con.execute("SELECT origin, hour, lines FROM template_hourly ORDER BY 1, 2").fetchall()
    assert rows == [("backfill:2025", datetime(2025, 6, 1, 10), 3), ("live", datetime(2026, 1, 1, 10), 2)]
    con.execute("UPDATE loaded_files SET loaded_at = '2026-02-01 00:00:00'")  # the year was loaded again
    _log(con, "b9", datetime(2025, 6, 1, 11, 0), "pay", "tA", "f.log", 9)
    assert update_series(con).years_recomputed == [2025]
    assert con.execute("SELECT sum(lines) FROM template_hourly WHERE origin = 'backfill:2025'").fetchone()[0] == 4


def test_new_template_alerts_skip_known_and_generalised_templates(con):
    con.execute("INSERT INTO loaded_files VALUES (2025, 'f.log', '2026-01-01 00:00:00')")
    _log(con, "b0", datetime(2025, 6, 1, 10), "pay", "known", "f.log", 0)
    con.execute('INSERT INTO stream_offsets (topic, "partition", next_offset, updated_at) VALUES (\'t\', 0, 3, now())')
    con.execute("INSERT INTO template_aliases VALUES ('known', 'widened', now())")
    _log(con, "l0", datetime(2026, 1, 1, 1), "pay", "known", "t/0", 0, year=2026)
    _log(con, "l1", datetime(2026, 1, 1, 2), "pay", "widened", "t/0", 1, year=2026)
    _log(con, "l2", datetime(2026, 1, 1, 3), "pay", "brand-new", "t/0", 2, level="ERROR", year=2026)
    update_series(con)
    runbooks = []
    events = detect_new_templates(con, T1, find_runbook=lambda svc, text: runbooks.append(text) or "rb.md")
    assert [(e["template_id"], e["severity"], e["runbook"]) for e in events] == [("brand-new", "critical", "rb.md")]
    assert events[0]["sample"] == "msg of brand-new" and runbooks == ["msg of brand-new"]
    assert detect_new_templates(con, T1) == []  # recorded once
    assert con.execute("SELECT count(*) FROM template_events WHERE kind = 'new_template'").fetchone()[0] == 1


def test_severity_from_level_and_criticality():
    assert severity("INFO", "low") == "low"
    assert severity("WARN", None) == "medium"
    assert severity("ERROR", "low") == "high"
    assert severity("ERROR", "critical") == "critical"


def _series(con, service, template_id, end, hours, per_hour, errors=lambda h, n: 0):
    rows = []
    for k in range(hours, 0, -1):
        hour = end - timedelta(hours=k)
        n = per_hour(hour)
        if n:
            rows.append(("backfill:2025", template_id, service, hour, n, errors(hour, n), 100 * n))
    _insert_hourly(con, rows)


def _insert_hourly(con, rows):
    table = pa.table(list(zip(*rows)), names=["origin", "template_id", "service", "hour", "lines", "errors", "bytes"])
    con.register("new_hourly", table)
    con.execute("INSERT INTO template_hourly SELECT * FROM new_hourly")
    con.unregister("new_hourly")


def test_anomalies_fire_exactly_on_spike_drop_and_error_share(con):
    r = random.Random(7)
    end = datetime(2025, 11, 5, 12)  # a Wednesday; the window is 11:00-12:00
    window = end - timedelta(hours=1)
    hours = 24 * 7 * 9
    # A daily rhythm (busy afternoons): a template that is flat in its own hour of day is not anomalous.
    daily = {h: 40 if 9 <= h <= 17 else 8 for h in range(24)}
    _series(con, "web", "steady", end, hours, lambda h: daily[h.hour] + r.randint(-3, 3))
    _series(con, "web", "spiky", end, hours, lambda h: 300 if h == window else 20 + r.randint(-2, 2))
    _series(con, "web", "quiet", end, hours, lambda h: 0 if h == window else 12 + r.randint(-2, 2))
    _series(con, "pay", "errs", end, hours, lambda h: 30 + r.randint(-2, 2),
            errors=lambda h, n: n // 2 if h == window else (1 if h.hour % 3 == 0 else 0))
    found = detect_anomalies(con, AnomalySettings(), window_end=end)
    assert sorted((e["kind"], e["template_id"], e["service"]) for e in found) == [
        ("drop", "quiet", "web"), ("error_share", "*", "pay"), ("spike", "spiky", "web")]
    spike = next(e for e in found if e["kind"] == "spike")
    assert spike["observed"] == 300 and 18 <= spike["expected"] <= 22 and spike["score"] >= 4
    # The same window scored again records nothing twice; an hour earlier nothing is unusual.
    detect_anomalies(con, AnomalySettings(), window_end=end)
    assert con.execute("SELECT count(*) FROM template_events").fetchone()[0] == 3
    assert detect_anomalies(con, AnomalySettings(), window_end=window) == []


def test_what_changed_between_two_periods(con):
    con.execute("INSERT INTO templates VALUES ('tA', 'a <*>', 'pay', NULL, NULL, 0), "
                "('tB', 'b <*>', 'pay', NULL, NULL, 0), ('tC', 'c <*>', 'pay', NULL, NULL, 0)")
    rows = [("backfill:2025", "tA", "pay", datetime(2025, 3, 1, 1), 10, 0, 0),
            ("backfill:2025", "tC", "pay", datetime(2025, 3, 1, 2), 5, 0, 0),
            ("backfill:2025", "tA", "pay", datetime(2025, 3, 2, 1), 80, 0, 0),
            ("backfill:2025", "tB", "pay", datetime(2025, 3, 2, 3), 7, 0, 0)]
    _insert_hourly(con, rows)
    changes = what_changed(con, "2025-03-01", "2025-03-02", service="pay")
    assert [r["template_id"] for r in changes.new] == ["tB"]
    assert [r["template_id"] for r in changes.gone] == ["tC"]
    assert [(r["template_id"], r["lines_a"], r["lines_b"]) for r in changes.shifts] == [("tA", 10, 80)]
    assert "new in B: 1" in changes.render()
    assert parse_period("2024-11..2025-01") == (datetime(2024, 11, 1), datetime(2025, 2, 1))
    with pytest.raises(ValueError):
        parse_period("last tuesday")
