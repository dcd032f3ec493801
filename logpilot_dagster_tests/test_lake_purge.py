"""Right to be forgotten on the lake profile (real pgserver catalog, moto S3 data): after a purge the value is
in no byte of the lake's data objects (Parquet decoded), of a ``pg_dump`` of the catalog database, of that
database's Postgres files (after a CHECKPOINT), or of the home; the receipt is written and a second purge is a no-op."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import boto3
import pytest

from logpilot_dagster.lifecycle.lake_purge import WAL_NOTE
from logpilot_dagster.storage.warehouse import connect
from logpilot_dagster_tests.purge_home import VALUE, build_planted_home, files_holding
from logpilot_dagster_tests.test_purge import LANDING, _env, run_purge

pytestmark = pytest.mark.lake


def _pg(postgres, tool: str, database: str, *args: str) -> str:
    """Run pgserver's own ``psql``/``pg_dump`` against ``database``."""
    import pgserver

    binary = Path(pgserver.__file__).parent / "pginstall" / "bin" / tool
    socket_dir = postgres.get_postmaster_info().socket_dir
    done = subprocess.run([str(binary), "-h", socket_dir, "-U", "postgres", "-d", database, *args],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _database() -> str:
    return dict(kv.split("=", 1) for kv in os.environ["LOGPILOT_LAKE_CATALOG"].split(":", 1)[1].split())["dbname"]


def _download_lake(endpoint: str, out: Path) -> int:
    """Every object of the lake's bucket under ``out`` (searched decoded by ``files_holding``); returns how many."""
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="lake")
            for o in page.get("Contents", [])]
    for key in keys:
        (out / key).parent.mkdir(parents=True, exist_ok=True)
        s3.download_file("lake", key, str(out / key))
    return len(keys)


def _catalog_holds(postgres, database: str) -> dict[str, bool]:
    """Whether the value is in a ``pg_dump`` of the catalog database (live tuples), and in any of that database's
    files after a ``CHECKPOINT`` (dead tuples and Postgres' own ``pg_statistic`` samples too)."""
    dump = _pg(postgres, "pg_dump", database)
    _pg(postgres, "psql", database, "-c", "CHECKPOINT")
    oid = _pg(postgres, "psql", database, "-At", "-c",
              f"SELECT oid FROM pg_database WHERE datname = '{database}'").strip()
    needle = VALUE.lower().encode()
    files = [p for p in (Path(postgres.pgdata) / "base" / oid).iterdir() if p.is_file()]
    return {"dump": VALUE.lower() in dump.lower(), "files": any(needle in p.read_bytes().lower() for p in files)}


def test_lake_purge_removes_the_value_from_data_files_catalog_and_home(lake_home, postgres, moto_endpoint,
                                                                       tmp_path, monkeypatch, capsys):
    _env(monkeypatch, tmp_path, "pseudonymize")
    home = lake_home.home
    build_planted_home(home, years=(2022,), lines=3000, vectors=False)
    database = _database()
    with connect(lake_home.db_path) as con:  # a line whose text sorts last: the value is the table's max too
        con.execute("INSERT INTO logs SELECT * REPLACE ('~ ' || ? AS message) FROM logs LIMIT 1", [VALUE])
    table_max = ("SELECT count(*) FROM ducklake_table_column_stats WHERE max_value LIKE '%Quillon Zanzibar%'")
    assert _pg(postgres, "psql", database, "-At", "-c", table_max).strip() == "1"
    assert _download_lake(moto_endpoint, tmp_path / "before") > 0
    assert files_holding(tmp_path / "before", [VALUE])  # the search sees into the (compressed) data files
    assert _catalog_holds(postgres, database) == {"dump": True, "files": True}  # the column statistics
    with connect(lake_home.db_path, read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM logs").fetchone()[0]

    rc, receipt, text = run_purge(home, "--value", VALUE, capsys=capsys)

    assert rc == 0 and receipt["touched"]["hot"]["logs"] >= 7 and receipt["touched"]["hot"]["templates"] >= 1
    assert _download_lake(moto_endpoint, tmp_path / "after") > 0
    assert files_holding(tmp_path / "after", [VALUE]) == []
    assert _catalog_holds(postgres, database) == {"dump": False, "files": False}
    assert _pg(postgres, "psql", database, "-At", "-c", table_max).strip() == "0"
    assert files_holding(home, [VALUE], skip=LANDING) == []
    assert VALUE.lower() not in text.lower() and WAL_NOTE in receipt["notes"]
    stored = json.loads((home / "state" / "receipts" / f"{receipt['request_id']}.json").read_text())
    assert stored["fingerprint"] == receipt["fingerprint"]
    with connect(lake_home.db_path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM logs").fetchone()[0] == rows  # re-masked, not deleted
        assert con.execute("SELECT count(*) FROM logs WHERE message LIKE '%<PURGED>%'").fetchone()[0] >= 7
        assert con.execute("SELECT count(*) FROM lifecycle_runs WHERE step = 'purge_rewrite_pending'"
                           ).fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM purge_receipts").fetchone()[0] == 1

    rc, again, _ = run_purge(home, "--value", VALUE, capsys=capsys)
    assert again["total_touched"] == 0 and again["earlier_requests"] == [receipt["request_id"]]
    assert not again["warehouse_rewritten"] and WAL_NOTE not in again["notes"]
