"""Crash safety: a real tiering (or restore) subprocess is SIGKILLed at each step boundary of the move protocol
(``LOGPILOT_CRASH_AT``); no row is lost or duplicated, and a re-run reaches the state of a run that never
crashed, with no garbage left in the store."""

import os
import shutil
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from logpilot_dagster.lifecycle import catalog
from logpilot_dagster.lifecycle.crash import CRASH_ENV
from logpilot_dagster.lifecycle.restore import restore_range
from logpilot_dagster.lifecycle.settings import TierStoreSettings
from logpilot_dagster.lifecycle.store import tier_store
from logpilot_dagster.lifecycle.tiering import Tiering, TieringPolicy
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.warehouse import connect, ensure_schema
from logpilot_dagster_tests.lifecycle_data import insert_logs, stored_event_ids

FIRST, SECOND = datetime(2026, 11, 15), datetime(2026, 12, 2)
#: The crashing run moves rows hot -> warm (merging into October's objects), warm -> cold, and deletes
#: September 2025 by retention.
POLICY = TieringPolicy(delete_after_days=400)
POINTS = ["retention_after_commit", "warm_after_put", "warm_after_verify", "warm_in_transaction",
          "warm_after_commit", "cold_after_copy", "cold_in_transaction", "cold_after_commit"]


def tier(home: str, now: str, delete_after_days: str = "") -> None:
    """The subprocess's work (also called in-process for the re-run)."""
    paths = LogPilotPaths.from_env(home)
    settings = TierStoreSettings.from_env(paths)
    policy = TieringPolicy(delete_after_days=float(delete_after_days)) if delete_after_days else TieringPolicy()
    Tiering(paths, tier_store(settings), settings, policy, datetime.fromisoformat(now)).run()


def restore_all(home: str) -> None:
    paths = LogPilotPaths.from_env(home)
    settings = TierStoreSettings.from_env(paths)
    restore_range(paths, tier_store(settings), settings, None, None, now=SECOND)


def crash(point: str, func: str, *args: str) -> None:
    code = f"import sys; from logpilot_dagster_tests.test_lifecycle_crash import {func}; {func}(*sys.argv[1:])"
    env = {**os.environ, CRASH_ENV: point}
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == -9, f"did not crash at {point}: rc={proc.returncode}\n{proc.stderr[-2000:]}"


def state(paths: LogPilotPaths) -> dict:
    with connect(paths.db_path) as con:
        ids = Counter(stored_event_ids(con, paths.home / "tiers"))
        keys = [k for (k,) in con.execute("SELECT object_key FROM tier_objects ORDER BY 1").fetchall()]
        cold = len(catalog.cold_ranges(con, None, None, None))
    store = sorted(p.relative_to(paths.home / "tiers").as_posix() for p in (paths.home / "tiers").rglob("*")
                   if p.is_file())
    return {"ids": ids, "keys": keys, "store": store, "cold": cold}


@pytest.fixture(scope="module")
def homes(tmp_path_factory):
    """The home after a first run (``template``), and the state a crash-free second run reaches."""
    template = LogPilotPaths.from_env(tmp_path_factory.mktemp("template")).ensure()
    with connect(template.db_path) as con:
        ensure_schema(con)
        insert_logs(con, 1_500, datetime(2025, 9, 1), datetime(2026, 12, 1))
        original = Counter(e for (e,) in con.execute("SELECT event_id FROM logs").fetchall())
    tier(str(template.home), FIRST.isoformat())
    reference = LogPilotPaths.from_env(tmp_path_factory.mktemp("reference"))
    shutil.copytree(template.home, reference.home, dirs_exist_ok=True)
    tier(str(reference.home), SECOND.isoformat(), "400")
    return template, original, state(reference)


def copy_home(template: LogPilotPaths, target: Path) -> LogPilotPaths:
    shutil.copytree(template.home, target)
    return LogPilotPaths.from_env(target)


@pytest.mark.parametrize("point", POINTS)
def test_a_crash_at_any_step_loses_and_duplicates_nothing(homes, tmp_path, point):
    template, original, reference = homes
    assert reference["store"] == reference["keys"] and reference["cold"] > 0
    assert max(reference["ids"].values()) == 1 and set(reference["ids"]) < set(original)
    paths = copy_home(template, tmp_path / "home")
    crash(point, "tier", str(paths.home), SECOND.isoformat(), "400")

    crashed = state(paths)
    assert max(crashed["ids"].values()) == 1, "a row is stored twice"
    assert set(reference["ids"]) <= set(crashed["ids"]) <= set(original), "a row was lost"
    assert set(crashed["keys"]) <= set(crashed["store"]), "the catalog names a missing object"

    tier(str(paths.home), SECOND.isoformat(), "400")
    rerun = state(paths)
    assert rerun == reference
    tier(str(paths.home), SECOND.isoformat(), "400")
    assert state(paths) == reference


def test_a_crashed_restore_restores_nothing_and_a_rerun_restores_all(homes, tmp_path):
    template, _, reference = homes
    paths = copy_home(template, tmp_path / "home")
    tier(str(paths.home), SECOND.isoformat(), "400")
    crash("restore_before_commit", "restore_all", str(paths.home))
    assert state(paths)["cold"] == reference["cold"]
    restore_all(str(paths.home))
    restored = state(paths)
    assert restored["cold"] == 0 and restored["ids"] == reference["ids"]
    assert len(restored["keys"]) == len(reference["keys"]) + reference["cold"]
