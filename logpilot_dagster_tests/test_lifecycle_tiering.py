"""Tiering on the local tier store: same answers through ``logs_all``, re-run is a no-op, cold data is
unreadable and reported until restored, retention, and Parquet footers without text statistics."""

from datetime import datetime, timedelta

import pyarrow.parquet as pq
import pytest

from logpilot_dagster.lifecycle import catalog, views
from logpilot_dagster.lifecycle.restore import restore_range
from logpilot_dagster.lifecycle.settings import TierStoreSettings
from logpilot_dagster.lifecycle.store import tier_store
from logpilot_dagster.lifecycle.tiering import Tiering, TieringPolicy
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.warehouse import connect, ensure_schema
from logpilot_dagster_tests.lifecycle_data import answers, insert_logs, stored_event_ids

NOW = datetime(2026, 12, 2)
KEEP_WARM = TieringPolicy(cold_after_days=10_000)


@pytest.fixture
def home(tmp_path):
    paths = LogPilotPaths.from_env(tmp_path).ensure()
    with connect(paths.db_path) as con:
        ensure_schema(con)
        insert_logs(con, 6_000, datetime(2022, 11, 1), datetime(2026, 12, 1))
    return paths


def tier(paths, policy=TieringPolicy(), now=NOW):
    settings = TierStoreSettings.from_env(paths)
    return Tiering(paths, tier_store(settings), settings, policy, now).run()


def store_keys(paths):
    return sorted(p.relative_to(paths.home / "tiers").as_posix() for p in (paths.home / "tiers").rglob("*")
                  if p.is_file())


def test_logs_all_answers_the_same_after_tiering_and_a_rerun_is_a_no_op(home):
    with connect(home.db_path) as con:
        before, ids = answers(con, "logs"), sorted(stored_event_ids(con, ""))
    report = tier(home, KEEP_WARM)
    assert report.rows_to_warm > 5_000 and report.warm_objects_written == 3 * 49  # 3 services x 49 months
    with connect(home.db_path, read_only=True) as con:
        views.prepare_reader(con, home)  # the agent's locked-down connection
        assert answers(con, "logs_all") == before
        assert con.execute("SELECT min(ts) >= ? FROM logs", [NOW - timedelta(days=30)]).fetchone() == (True,)
    with connect(home.db_path) as con:
        assert sorted(stored_event_ids(con, home.home / "tiers")) == ids
        listed = con.execute("SELECT object_key, sha256 FROM tier_objects ORDER BY 1").fetchall()
    keys = store_keys(home)

    again = tier(home, KEEP_WARM)
    assert (again.rows_to_warm, again.rows_to_cold, again.warm_objects_written, again.garbage_deleted) == (0, 0, 0, 0)
    assert store_keys(home) == keys == [k for k, _ in listed]
    with connect(home.db_path) as con:
        assert con.execute("SELECT object_key, sha256 FROM tier_objects ORDER BY 1").fetchall() == listed


def test_a_later_run_merges_new_rows_into_the_months_object(home):
    tier(home, KEEP_WARM, now=datetime(2026, 11, 15))
    with connect(home.db_path) as con:
        before = answers(con, "logs_all")
        (october,) = con.execute("SELECT rows FROM tier_objects WHERE service = 'payments-api' "
                                 "AND month = '2026-10'").fetchone()
    report = tier(home, KEEP_WARM, now=NOW)
    assert report.warm_objects_replaced == 3  # October of each service: old object retired, merged one written
    with connect(home.db_path) as con:
        assert answers(con, "logs_all") == before
        (merged,) = con.execute("SELECT rows FROM tier_objects WHERE service = 'payments-api' "
                                "AND month = '2026-10'").fetchone()
        assert merged > october
        assert len(stored_event_ids(con, home.home / "tiers")) == 6_000
    assert len(store_keys(home)) == 3 * 49


def test_cold_data_is_reported_and_unreadable_until_restored(home):
    with connect(home.db_path) as con:
        before = answers(con, "logs")
    report = tier(home)
    assert report.cold_objects_written > 0 and report.rows_to_cold > 0
    year_2023 = (datetime(2023, 1, 1), datetime(2024, 1, 1))
    with connect(home.db_path, read_only=True) as con:
        views.prepare_reader(con, home)
        cold = catalog.cold_ranges(con, "payments-api", *year_2023)
        assert [r["month"] for r in cold] == [f"2023-{m:02d}" for m in range(1, 13)]
        assert answers(con, "logs_all")["errors_2023"] == [(0,)]  # unreadable, hence the cold_ranges warning
        with pytest.raises(Exception, match="Permission"):
            con.execute(f"SELECT count(*) FROM read_parquet('{home.home}/tiers/{cold[0]['object_key']}')")
    settings = TierStoreSettings.from_env(home)
    restored = restore_range(home, tier_store(settings), settings, None, None, now=NOW)
    assert restored.objects_restored == report.cold_objects_written and not restored.pending
    with connect(home.db_path, read_only=True) as con:
        views.prepare_reader(con, home)
        assert catalog.cold_ranges(con, None, None, None) == []
        assert answers(con, "logs_all") == before
        token = con.execute("SELECT token FROM tier_object_tokens LIMIT 1").fetchone()[0]
        holders = catalog.objects_with_token(con, token)
    assert any(k.startswith("cold/") for k in holders) and any(k.startswith("restored/") for k in holders)

    expiry = tier(home, now=NOW + timedelta(days=8))  # restored copies last restore_days (7)
    assert expiry.restored_expired == restored.objects_restored
    with connect(home.db_path) as con:
        assert len(catalog.cold_ranges(con, "payments-api", *year_2023)) == 12
    assert not (home.home / "tiers/restored").exists() or not any((home.home / "tiers/restored").rglob("*.parquet"))


def test_retention_deletes_old_data_from_every_tier(home):
    tier(home)
    report = tier(home, TieringPolicy(delete_after_days=3 * 365), now=NOW)
    cutoff = NOW - timedelta(days=3 * 365)
    assert report.tier_objects_deleted > 0
    with connect(home.db_path) as con:
        assert con.execute("SELECT count(*) FROM tier_objects WHERE max_ts < ?", [cutoff]).fetchone() == (0,)
        assert con.execute("SELECT min(min_ts) FROM tier_objects").fetchone()[0] >= datetime(2023, 11, 1)
        assert len(stored_event_ids(con, home.home / "tiers")) == 6_000 - report.tier_rows_deleted
    assert not any("month=2023-10" in k or "month=2022" in k for k in store_keys(home))


def test_objects_carry_no_text_statistics_and_index_their_tokens(home):
    tier(home, KEEP_WARM)
    with connect(home.db_path) as con:
        key, = con.execute("SELECT object_key FROM tier_objects WHERE object_key IN "
                           "(SELECT object_key FROM tier_object_tokens) LIMIT 1").fetchone()
        tokens = {t for (t,) in con.execute("SELECT token FROM tier_object_tokens WHERE object_key = ?",
                                             [key]).fetchall()}
        in_object = {t for (t,) in con.execute(
            f"SELECT DISTINCT regexp_extract(message, '<EMAIL:[0-9a-f]{{12}}>') FROM "
            f"read_parquet('{home.home}/tiers/{key}') WHERE message LIKE '%<EMAIL:%'").fetchall()}
    assert tokens == in_object and tokens
    meta = pq.ParquetFile(home.home / "tiers" / key).metadata
    columns = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i)
               for i in range(meta.num_columns)}
    assert columns["ts"].is_stats_set
    texts = ("event_id", "message", "source", "component", "params.list.element")
    assert not any(columns[c].is_stats_set for c in texts)
    assert columns["message"].compression == "ZSTD"


def test_logpilot_tier_and_restore_commands(home, tmp_path, monkeypatch, capsys):
    from logpilot_dagster.cli import main

    monkeypatch.setenv("LOGPILOT_HOME", str(home.home))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert main(["--home", str(home.home), "tier", "--now", "2026-12-02T00:00:00"]) == 0
    out = capsys.readouterr().out
    assert "rows hot -> warm (147 objects)" in out and "rows warm -> cold" in out
    assert main(["--home", str(home.home), "restore", "--from", "2023-01-01", "--to", "2023-02-01",
                 "--service", "payments-api"]) == 0
    assert "restored 1 objects" in capsys.readouterr().out
    with connect(home.db_path) as con:
        assert catalog.cold_ranges(con, "payments-api", datetime(2023, 1, 1), datetime(2023, 2, 1)) == []
        assert len(catalog.cold_ranges(con, "payments-api", datetime(2023, 2, 1), datetime(2023, 3, 1))) == 1


def test_a_year_loaded_again_after_tiering_is_read_once_through_logs_all(tmp_path, monkeypatch):
    """The backfill replays a tiered year into hot: ``logs_all`` reads the hot copy only (before, it counted
    the year twice until the next tiering), and once tiering has merged it the view is plain again."""
    from logpilot_dagster_tests.pipeline import build_home, materialize_year

    monkeypatch.setenv("LOGPILOT_HOME", str(tmp_path))
    build_home(tmp_path, years=(2023,), lines=3000)
    paths = LogPilotPaths.from_env(tmp_path)
    count = "SELECT count(*), count(DISTINCT event_id) FROM logs_all"
    with connect(paths.db_path, read_only=True) as con:
        (rows, _), = con.execute(count).fetchall()
    assert tier(paths, KEEP_WARM).rows_to_warm == rows
    materialize_year(tmp_path, 2023)
    with connect(paths.db_path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM logs").fetchone() == (rows,)  # hot again, and warm
        assert con.execute(count).fetchall() == [(rows, rows)]
    assert tier(paths, KEEP_WARM).rows_to_warm == rows
    with connect(paths.db_path, read_only=True) as con:
        assert con.execute(count).fetchall() == [(rows, rows)]
        (view,), = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'logs_all'").fetchall()
        assert "NOT EXISTS" not in view.upper()
