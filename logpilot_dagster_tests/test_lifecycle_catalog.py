"""The lifecycle catalog and ``logs_all`` (the contract other domains code against), on a local tier store."""

from datetime import datetime

import duckdb
import pytest

from logpilot_dagster.lifecycle import catalog, views
from logpilot_dagster.lifecycle.settings import TierStoreSettings
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.warehouse import connect, ensure_schema

ROW = ("SELECT 'e{i}' AS event_id, TIMESTAMP '{ts}' AS ts, '{svc}' AS service, 'INFO' AS level, 't' AS template_id,"
       " 'hello <EMAIL:{tok}>' AS message, ['x'] AS params, 'src' AS source, {i} AS source_offset, {year} AS year,"
       " 'c' AS component")


def _object(path, i, ts, svc, tok="0123456789ab"):
    path.parent.mkdir(parents=True, exist_ok=True)
    duckdb.execute(f"COPY ({ROW.format(i=i, ts=ts, svc=svc, tok=tok, year=ts[:4])}) TO '{path}' (FORMAT parquet)")


@pytest.fixture
def home(tmp_path):
    paths = LogPilotPaths.from_env(tmp_path).ensure()
    settings = TierStoreSettings.from_env(paths)
    root = paths.home / "tiers"
    _object(root / "warm/service=a/month=2024-03/w.parquet", 2, "2024-03-05 10:00:00", "a")
    _object(root / "cold/service=a/month=2022-01/c.parquet", 3, "2022-01-09 10:00:00", "a", tok="ffffffffffff")
    with connect(paths.db_path) as con:
        ensure_schema(con)
        catalog.ensure_lifecycle_schema(con)
        hot = ROW.format(i=1, ts="2026-11-30 00:00:00", svc="a", tok="0123456789ab", year=2026)
        con.execute(f"INSERT INTO logs {hot}")
        con.execute("""INSERT INTO tier_objects VALUES
            ('warm/service=a/month=2024-03/w.parquet', 'warm', 'a', '2024-03', '2024-03-05 10:00', '2024-03-05 10:00',
             1, 1, 'x', now(), now()),
            ('cold/service=a/month=2022-01/c.parquet', 'cold', 'a', '2022-01', '2022-01-09 10:00', '2022-01-09 10:00',
             1, 1, 'y', now(), now())""")
        con.execute("""INSERT INTO tier_object_tokens VALUES
            ('warm/service=a/month=2024-03/w.parquet', '<EMAIL:0123456789ab>'),
            ('cold/service=a/month=2022-01/c.parquet', '<EMAIL:ffffffffffff>')""")
        views.refresh_logs_all(con, paths, settings)
    return paths


def test_logs_all_reads_hot_and_warm_from_a_locked_down_connection(home):
    with connect(home.db_path, read_only=True) as con:
        views.prepare_reader(con, home)
        assert con.execute("SELECT event_id FROM logs_all ORDER BY 1").fetchall() == [("e1",), ("e2",)]
        columns = "SELECT column_name, column_type FROM (DESCRIBE {})"
        assert con.execute(columns.format("logs_all")).fetchall() == con.execute(columns.format("logs")).fetchall()
        cold = home.home / "tiers/cold/service=a/month=2022-01/c.parquet"
        with pytest.raises(duckdb.PermissionException):
            con.execute(f"SELECT * FROM read_parquet('{cold}')")
        with pytest.raises(duckdb.PermissionException):
            con.execute("SELECT * FROM read_csv('/etc/passwd')")


def test_cold_ranges_report_unrestored_cold_objects_until_a_restored_copy_exists(home):
    with connect(home.db_path) as con:
        jan = (datetime(2022, 1, 1), datetime(2022, 2, 1))
        assert [r["month"] for r in catalog.cold_ranges(con, "a", *jan)] == ["2022-01"]
        assert catalog.cold_ranges(con, "b", *jan) == []
        assert catalog.cold_ranges(con, None, datetime(2023, 1, 1), None) == []
        con.execute("INSERT INTO tier_objects SELECT 'restored/service=a/month=2022-01/c.parquet', 'restored', "
                    "service, month, min_ts, max_ts, rows, bytes, sha256, now(), now() FROM tier_objects "
                    "WHERE tier = 'cold'")
        assert catalog.cold_ranges(con, "a", *jan) == []


def test_objects_by_token_and_by_range(home):
    with connect(home.db_path) as con:
        assert catalog.objects_with_token(con, "<EMAIL:ffffffffffff>") == ["cold/service=a/month=2022-01/c.parquet"]
        assert catalog.objects_with_token(con, "<EMAIL:000000000000>") == []
        rows = catalog.objects_overlapping(con, "a", datetime(2022, 1, 9, 10), datetime(2024, 3, 5, 10))
        assert [r["tier"] for r in rows] == ["cold"]  # end is exclusive
        assert len(catalog.objects_overlapping(con, None, None, None)) == 2


def test_tier_directories_local_and_s3(home):
    assert views.tier_directories(home) == [f"{home.home}/tiers/warm/", f"{home.home}/tiers/restored/"]
    s3 = TierStoreSettings(local_root="", bucket="logs", prefix="tiers")
    assert views.tier_directories(home, s3) == ["s3://logs/tiers/warm/", "s3://logs/tiers/cold/"]
