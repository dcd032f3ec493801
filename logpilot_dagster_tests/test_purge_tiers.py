"""Purges across tiers: the planted person lives in a cold month (2022-03), a warm month (2023-09) and hot rows
(2023-12). Only the objects that hold it are rewritten (local store, and S3 on a moto server on loopback with
the cold tier in GLACIER), and nothing under the home or in the bucket holds it afterwards."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from logpilot_dagster.cli import main
from logpilot_dagster.lifecycle.settings import TierStoreSettings
from logpilot_dagster.lifecycle.store import tier_store
from logpilot_dagster.lifecycle.tiering import Tiering, TieringPolicy
from logpilot_dagster.privacy.pseudonym import PseudonymKeys
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster_tests.purge_home import (EMAIL, TIERED_PLANTED, VALUE, build_planted_home, files_holding,
                                               store_uncompressed)
from logpilot_dagster_tests.test_purge import LANDING, _env

#: ``logpilot purge`` in a process of its own, without importing the rest of the CLI (faster to start)
PURGE_ONLY = """
import argparse, sys
from logpilot_dagster.lifecycle.purge_cli import register
parser = argparse.ArgumentParser()
parser.add_argument("--home")
register(parser.add_subparsers())
args = parser.parse_args()
sys.exit(args.func(args))
"""
NOW = datetime(2024, 1, 1)  # 2022 goes cold, 2023 up to late November warm, December stays hot
POLICY = TieringPolicy(warm_after_days=35, cold_after_days=365)


def tier(home: Path) -> None:
    paths = LogPilotPaths.from_env(home)
    settings = TierStoreSettings.from_env(paths)
    Tiering(paths, tier_store(settings), settings, POLICY, NOW, threads=2).run()


def catalog(home: Path) -> dict[str, tuple]:
    with duckdb.connect(str(home / "logs.duckdb"), read_only=True) as con:
        return {key: (tier, service, month, sha) for key, tier, service, month, sha in con.execute(
            "SELECT object_key, tier, service, month, sha256 FROM tier_objects").fetchall()}


def scalar(home: Path, sql: str, params=()):
    with duckdb.connect(str(home / "logs.duckdb"), read_only=True) as con:
        return con.execute(sql, list(params)).fetchone()[0]


def purge_json(home: Path, capsys, *args: str) -> dict:
    capsys.readouterr()
    main(["--home", str(home), "purge", *args, "--json"])
    return json.loads(capsys.readouterr().out)


def needles() -> list[str]:
    return [EMAIL] + PseudonymKeys.load().tokens("email", EMAIL)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("purge_tiers")
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, tmp, "pseudonymize")
        yield tmp, mp


@pytest.fixture(scope="module")
def planted(env):
    """Backfilled once (two services), not tiered; each test home is a copy."""
    tmp, _ = env
    home = tmp / "planted"
    build_planted_home(home, lines=6000, vectors=False, planted=TIERED_PLANTED,
                       services=("auth-service", "payments-api"))
    return home


@pytest.fixture(scope="module")
def tiered_home(env, planted):
    home = env[0] / "local"
    shutil.copytree(planted, home)
    tier(home)
    return home


def test_local_tiers_only_affected_objects_are_rewritten(tiered_home, capsys):
    home = tiered_home
    before = catalog(home)
    assert {t for t, *_ in before.values()} == {"warm", "cold"}
    holders = set(files_holding(home / "tiers", needles()))
    assert {before[k][2] for k in holders} == {"2022-03", "2023-09"}
    bytes_before = {k: (home / "tiers" / k).read_bytes() for k in before}
    rows_all = scalar(home, "SELECT count(*) FROM logs_all")

    receipt = purge_json(home, capsys, "--email", EMAIL)

    # 2 rows with the old key's token per month, 3 more with the address where the masker pseudonymizes it
    assert receipt["touched"]["cold"]["objects"] == 1 and receipt["touched"]["cold"]["rows"] in (2, 5)
    assert receipt["touched"]["warm"]["objects"] == 1 and receipt["touched"]["warm"]["rows"] in (2, 5)
    assert receipt["touched"]["hot"]["logs"] in (2, 5)
    assert receipt["objects"]["rewritten"] == 2 and receipt["objects"]["catalogued"] == len(before)
    after = catalog(home)
    assert set(before) - set(after) == holders and len(after) == len(before)
    for key in set(before) & set(after):  # every other object is untouched, byte for byte
        assert (home / "tiers" / key).read_bytes() == bytes_before[key]
    for key in set(after) - set(before):
        assert after[key][:3] in {before[k][:3] for k in holders}
    assert files_holding(home, needles(), skip=LANDING) == []
    assert scalar(home, "SELECT count(*) FROM logs_all") == rows_all
    assert scalar(home, "SELECT count(*) FROM tier_object_tokens WHERE list_contains(?, token)",
                  [needles()[1:]]) == 0
    resumed = "SELECT count(*) FROM logs_all WHERE message = 'Session resumed for <EMAIL_REDACTED>'"
    assert scalar(home, resumed) == 4  # hot and warm (cold is not in logs_all until restored)

    again = purge_json(home, capsys, "--email", EMAIL)
    assert again["total_touched"] == 0 and again["objects"]["rewritten"] == 0 and catalog(home) == after


def test_local_tiers_literal_value_and_service_range(tiered_home, capsys):
    home = tiered_home
    before = catalog(home)
    receipt = purge_json(home, capsys, "--value", VALUE)
    assert receipt["objects"]["scanned"] == len(before)  # a literal has no index: every object is read
    assert receipt["objects"]["rewritten"] == 2
    assert files_holding(home, [VALUE], skip=LANDING) == []

    months = {k: v for k, v in catalog(home).items() if v[1] == "payments-api" and v[2] in ("2022-06", "2022-07")}
    assert len(months) == 2
    catalogued = "SELECT sum(rows) FROM tier_objects WHERE service = 'payments-api'"
    rows = scalar(home, catalogued)
    month_rows = scalar(home, "SELECT sum(rows) FROM tier_objects WHERE list_contains(?, object_key)", [list(months)])
    receipt = purge_json(home, capsys, "--service", "payments-api", "--from", "2022-06-01", "--to", "2022-08-01")
    assert receipt["objects"]["dropped"] == 2 and receipt["objects"]["rewritten"] == 0
    assert not set(months) & set(catalog(home))
    assert not any((home / "tiers" / k).exists() for k in months)
    removed = month_rows
    assert receipt["touched"]["cold"] == {"objects": 2, "rows": removed}
    assert scalar(home, catalogued) == rows - removed


@pytest.mark.parametrize("point", ["purge_objects_written", "purge_after_commit"])
def test_a_purge_killed_midway_is_finished_by_the_next_run(env, planted, tmp_path, point):
    home = tmp_path / "home"
    shutil.copytree(planted, home)
    tier(home)
    store_uncompressed(home / "logs.duckdb")  # so a value left in free blocks would show
    before = catalog(home)
    cli = [sys.executable, "-c", PURGE_ONLY, "--home", str(home), "purge", "--email", EMAIL]
    killed = subprocess.run(cli, env={**os.environ, "LOGPILOT_CRASH_AT": point}, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL
    assert files_holding(home, needles(), skip=LANDING)  # stopped before the file rewrite and deletions
    assert (catalog(home) == before) == (point == "purge_objects_written")

    finished = subprocess.run(cli + ["--json"], capture_output=True, text=True, check=True)
    receipt = json.loads(finished.stdout)
    assert receipt["warehouse_rewritten"]
    assert files_holding(home, needles(), skip=LANDING) == []
    stored = {p.relative_to(home / "tiers").as_posix() for p in (home / "tiers").rglob("*.parquet")}
    assert stored == set(catalog(home))  # no superseded or orphaned object left


@pytest.fixture
def s3_home(planted, tier_bucket, tmp_path):
    client, _ = tier_bucket
    home = tmp_path / "s3home"
    shutil.copytree(planted, home)
    tier(home)
    return home, client


def etags(client) -> dict[str, tuple[str, str]]:
    """Every object in the bucket: its ETag (content MD5) and storage class, without reading it."""
    return {o["Key"]: (o["ETag"], o.get("StorageClass", "STANDARD"))
            for o in client.list_objects_v2(Bucket="tiers", Prefix="lp/").get("Contents", [])}


def bucket_objects(client) -> dict[str, tuple[str, bytes]]:
    """Every object in the bucket: storage class and bytes (archived objects restored first to read them)."""
    out = {}
    for obj in client.list_objects_v2(Bucket="tiers", Prefix="lp/").get("Contents", []):
        key, storage = obj["Key"], obj.get("StorageClass", "STANDARD")
        if storage == "GLACIER" and 'ongoing-request="false"' not in client.head_object(
                Bucket="tiers", Key=key).get("Restore", ""):
            client.restore_object(Bucket="tiers", Key=key, RestoreRequest={"Days": 1})
        out[key] = (storage, client.get_object(Bucket="tiers", Key=key)["Body"].read())
    return out


def test_s3_cold_objects_are_restored_rewritten_and_archived_again(s3_home, capsys):
    home, client = s3_home
    before = catalog(home)
    assert "cold" in {t for t, *_ in before.values()}
    with duckdb.connect(str(home / "logs.duckdb"), read_only=True) as con:
        holders = {"lp/" + k for (k,) in con.execute("SELECT DISTINCT object_key FROM tier_object_tokens "
                                                      "WHERE list_contains(?, token)", [needles()[1:]]).fetchall()}
    assert len(holders) == 2 and any(k.startswith("lp/cold/") for k in holders)
    stored_before = etags(client)
    assert all(stored_before[k][1] == "GLACIER" for k in stored_before if k.startswith("lp/cold/"))

    receipt = purge_json(home, capsys, "--email", EMAIL)

    assert receipt["touched"]["cold"]["objects"] == 1 and receipt["touched"]["warm"]["objects"] == 1
    assert receipt["objects"]["pending_restore"] == []
    stored = etags(client)
    assert set(stored_before) - set(stored) == holders
    for key in set(stored) & set(stored_before):  # every other object is untouched
        assert stored[key] == stored_before[key]
    new_cold = [k for k in set(stored) - set(stored_before) if k.startswith("lp/cold/")]
    assert len(new_cold) == 1 and stored[new_cold[0]][1] == "GLACIER"  # archived again
    for key, (_, data) in bucket_objects(client).items():
        text = json.dumps(pq.read_table(io.BytesIO(data)).to_pylist(), default=str).lower()
        assert not any(n.lower() in text for n in needles()), key
    after = catalog(home)
    assert after[new_cold[0][len("lp/"):]][0] == "cold"
    assert files_holding(home, needles(), skip=LANDING) == []
