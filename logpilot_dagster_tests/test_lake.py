"""The lake profile (DuckLake: catalog in a real Postgres, data on a real S3 endpoint): the warehouse contract,
concurrent year loads from separate processes, and commit conflicts that retry."""

import json
import subprocess
import sys
import textwrap

import duckdb
import pytest

from logpilot_dagster.ingest import backfill
from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.ingest.sample_data import write_sample_home
from logpilot_dagster.storage import profile
from logpilot_dagster.storage.object_store import LocalObjectStore
from logpilot_dagster.storage.warehouse import connect, ensure_schema, upsert

pytestmark = pytest.mark.lake

YEARS = (2021, 2022, 2023)


def test_lake_warehouse_has_the_contract_without_keys_and_upserts_by_merge(lake_home):
    with connect(lake_home.db_path) as con:
        ensure_schema(con)
        assert con.execute("SELECT current_database()").fetchone()[0] == "lake"
        assert not con.execute("SELECT count(*) FROM duckdb_constraints() WHERE database_name = 'lake' "
                               "AND constraint_type = 'PRIMARY KEY'").fetchone()[0]
        for value in ("a", "b"):
            upsert(con, "system_catalog", "system_name",
                   "SELECT 'svc' AS system_name, ? AS department, NULL AS owner_email, 'high' AS criticality",
                   [value])
        assert con.execute("SELECT system_name, department FROM system_catalog").fetchall() == [("svc", "b")]
    assert not list(lake_home.home.glob("*.duckdb")), "the lake profile must not create the embedded file"
    with connect(lake_home.db_path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM system_catalog").fetchone()[0] == 1
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DELETE FROM system_catalog")


def _stage(paths, years):
    write_sample_home(paths.home, total_lines=4_500, years=years)
    store = LocalObjectStore(paths.landing_zone)
    return {y: backfill.stage_year(paths, store, SchemaRegistry.load(paths), y) for y in years}


_LOAD = textwrap.dedent("""
    import json, sys
    from logpilot_dagster.ingest import backfill
    from logpilot_dagster.ingest.registry import SchemaRegistry
    from logpilot_dagster.settings import LogPilotPaths
    paths = LogPilotPaths.from_env(sys.argv[1])
    result = backfill.load_year(paths, SchemaRegistry.load(paths), int(sys.argv[2]))
    print(json.dumps({"rows": result.rows, "quarantined": result.quarantined}))
""")


def test_three_processes_load_three_years_at_once_without_losing_or_doubling_a_row(lake_home):
    staged = _stage(lake_home, YEARS)
    loaders = [subprocess.Popen([sys.executable, "-c", _LOAD, str(lake_home.home), str(y)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for y in YEARS]
    outcomes = [p.communicate(timeout=300) for p in loaders]
    assert all(p.returncode == 0 for p in loaders), [err[-2000:] for _, err in outcomes]
    reported = {y: json.loads(out.strip().splitlines()[-1]) for y, (out, _) in zip(YEARS, outcomes)}
    with connect(lake_home.db_path, read_only=True) as con:
        per_year = dict(con.execute("SELECT year, count(*) FROM logs GROUP BY year").fetchall())
        total, distinct = con.execute("SELECT count(*), count(DISTINCT event_id) FROM logs").fetchone()
        dangling = con.execute("SELECT count(*) FROM logs WHERE template_id NOT IN "
                               "(SELECT template_id FROM templates)").fetchone()[0]
        counted = con.execute("SELECT sum(count) FROM templates").fetchone()[0]
        template_ids = con.execute("SELECT count(*) - count(DISTINCT template_id) FROM templates").fetchone()[0]
    assert per_year == {y: staged[y].rows for y in YEARS}
    assert {y: r["rows"] for y, r in reported.items()} == per_year
    assert total == distinct == sum(s.rows for s in staged.values())
    assert dangling == 0 and template_ids == 0 and counted == total


def test_a_commit_conflict_on_the_same_table_is_retried_and_succeeds(lake_home):
    backfill.load_catalog(lake_home)
    attempts = []

    def replace_catalog() -> None:
        with connect(lake_home.db_path) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute("DELETE FROM system_catalog")
                con.execute("INSERT INTO system_catalog VALUES ('only', 'ops', NULL, 'low')")
                if not attempts:  # a second writer replaces the same table and commits first
                    subprocess.run([sys.executable, "-c", "from logpilot_dagster.ingest.backfill import load_catalog;"
                                    "from logpilot_dagster.settings import LogPilotPaths;"
                                    f"load_catalog(LogPilotPaths.from_env({str(lake_home.home)!r}))"], check=True)
                attempts.append(len(attempts) + 1)
                con.execute("COMMIT")
            except BaseException:
                profile.rollback(con)
                raise

    profile.retry_conflicts(replace_catalog, "replace the catalog", backoff_s=0.01)
    assert attempts == [1, 2]
    with connect(lake_home.db_path, read_only=True) as con:
        assert con.execute("SELECT system_name FROM system_catalog").fetchall() == [("only",)]


def test_every_contract_table_loses_its_keys_on_the_lake_and_keeps_them_embedded(monkeypatch):
    from logpilot_dagster.discovery.rules import RULES_SCHEMA
    from logpilot_dagster.lifecycle.receipts import SCHEMA as RECEIPTS
    from logpilot_dagster.storage.warehouse import SCHEMA

    def keys() -> int:
        con = duckdb.connect()
        for ddl in (SCHEMA, RULES_SCHEMA, RECEIPTS):
            con.execute(profile.table_ddl(ddl))
        return con.execute("SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'"
                           ).fetchone()[0]

    monkeypatch.setenv("LOGPILOT_PROFILE", "embedded")
    assert keys() >= 10
    monkeypatch.setenv("LOGPILOT_PROFILE", "lake")
    assert keys() == 0


def test_purge_refuses_a_lake_catalog_outside_postgres_before_any_change(tmp_path, monkeypatch):
    from logpilot_dagster.lifecycle.matching import PurgeRequest
    from logpilot_dagster.lifecycle.purge import purge
    from logpilot_dagster.settings import LogPilotPaths

    monkeypatch.setenv("LOGPILOT_PROFILE", "lake")
    monkeypatch.setenv("LOGPILOT_LAKE_CATALOG", str(tmp_path / "catalog.ducklake"))
    paths = LogPilotPaths.from_env(tmp_path / "home")
    with pytest.raises(ValueError, match="catalog in Postgres"):
        purge(paths, PurgeRequest(value="Quillon Zanzibar"), LocalObjectStore(paths.landing_zone))
    assert not (tmp_path / "catalog.ducklake").exists() and not paths.state_dir.exists()
