"""The bootstrap backfill through real Dagster materializations on real DuckDB files."""

import json
from pathlib import Path

import duckdb
import pytest

from logpilot_dagster.ingest.backfill import year_dirs
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster_tests.pipeline import build_home, materialize_globals, materialize_year, metadata

YEARS = (2022, 2023)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("backfill")
    build_home(path, YEARS, lines=30_000)
    return path


def query(home: Path, sql: str, params=None):
    con = duckdb.connect(str(home / "logs.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def snapshot(home: Path, year: int):
    return query(home, "SELECT count(*), count(DISTINCT event_id), sum(hash(event_id, ts, template_id, message)) "
                       "FROM logs WHERE year = ?", [year])[0]


def test_tables_follow_the_contract(home):
    cols = {t: [c[0] for c in query(home, f"DESCRIBE {t}")] for t in ("logs", "templates", "system_catalog",
                                                                         "quarantine")}
    assert cols["logs"][:10] == ["event_id", "ts", "service", "level", "template_id", "message", "params", "source",
                                 "source_offset", "year"]
    assert cols["templates"] == ["template_id", "template", "service", "first_seen", "last_seen", "count"]
    assert cols["system_catalog"] == ["system_name", "department", "owner_email", "criticality"]
    assert cols["quarantine"] == ["source", "source_offset", "raw", "reason", "seen_at"]
    assert query(home, "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'logs'") == [(0,)]
    assert query(home, "SELECT count(*) - count(DISTINCT event_id) FROM logs") == [(0,)]  # unique without a key
    assert query(home, "SELECT count(*) FROM system_catalog")[0][0] == 8


def test_every_line_is_accounted_for_with_reasons(home):
    paths = LogPilotPaths.from_env(home)
    for year in YEARS:
        shard = json.loads(year_dirs(paths, year)[2].read_text())
        rows = query(home, "SELECT count(*) FROM logs WHERE year = ?", [year])[0][0]
        quarantined = query(home, "SELECT count(*) FROM quarantine WHERE source IN "
                                  "(SELECT source FROM loaded_files WHERE year = ?)", [year])[0][0]
        assert rows + quarantined == shard["lines_read"] > 0
    reasons = dict(query(home, "SELECT reason, count(*) FROM quarantine GROUP BY 1"))
    assert set(reasons) >= {"undecodable_utf8", "line_too_long", "no_format_match", "blank_line", "empty_file",
                            "truncated_gzip", "no_source_declared"}
    assert reasons["no_source_declared"] == 2
    truncated = query(home, "SELECT count(*) FROM logs WHERE source LIKE '%truncated.log.gz'")[0][0]
    assert 0 < truncated < 2000  # what the cut gzip still held was loaded, the rest is one quarantine row


def test_pii_never_reaches_storage(home):
    leaks = query(home, r"""SELECT count(*) FROM logs WHERE regexp_matches(message,
        '[\w.]+@[\w-]+\.[a-z]{2,}|\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b|\b\d{3}-\d{2}-\d{4}\b|\b4\d{3}[ -]?\d{4}[ -]?\d{4}[ -]?\d{4}\b')""")
    assert leaks[0][0] == 0
    masked = dict(query(home, "SELECT 'email', count(*) FROM logs WHERE message LIKE '%<EMAIL_REDACTED>%' UNION ALL "
                              "SELECT 'cc', count(*) FROM logs WHERE message LIKE '%<CC_REDACTED>%'"))
    assert masked["email"] > 0 and masked["cc"] > 0


def test_rerunning_a_year_is_idempotent(home):
    before = {y: snapshot(home, y) for y in YEARS}
    templates = query(home, "SELECT template_id, template, count FROM templates ORDER BY 1")
    materialize_year(home, 2023)
    assert {y: snapshot(home, y) for y in YEARS} == before
    assert query(home, "SELECT template_id, template, count FROM templates ORDER BY 1") == templates
    assert before[2023][0] == before[2023][1]  # event ids unique


def test_template_ids_are_stable_across_independent_shards(tmp_path, home):
    """A fresh home that mines 2023 first (a parallel shard would know nothing of 2022) gives the same ids."""
    other = tmp_path / "other"
    build_home(other, (2023,), lines=15_000)
    ours = set(query(home, "SELECT template_id, template FROM templates WHERE count > 0 AND service <> 'x'"))
    theirs = set(query(other, "SELECT template_id, template FROM templates WHERE count > 0"))
    assert theirs and len(theirs & ours) >= 0.9 * len(theirs)


def test_t1_is_the_latest_backfilled_event(home):
    result = materialize_globals(home)
    t1 = metadata(result, "t1_watermark")["t1"]
    assert t1 == query(home, "SELECT max(ts) FROM logs")[0][0].isoformat()
    assert t1.startswith("2023-12-31")
    assert [c.passed for c in result.get_asset_check_evaluations()] == [True]


def test_staging_metadata_reports_rates_and_reasons(home):
    meta = metadata(materialize_year(home, 2023), "logs_parquet")
    assert meta["lines_read"] == meta["rows"] + meta["quarantined"]
    assert meta["lines_per_s"] > 0 and "undecodable_utf8" in meta["quarantine_by_reason"]
