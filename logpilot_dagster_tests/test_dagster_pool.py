"""The shipped Dagster instance never strands a step in a pool's queue (logpilot_dagster/dagster_storage.py).

The state below is the one a clean-clone run hit: run A checked for a free `duckdb_writer` slot while run B held
it, B freed it, then A queued its step unassigned; nobody assigns it after that, and stock Dagster 1.13 blocks it
forever. The shipped instance's claim takes the free slot instead."""
import shutil
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster_postgres.event_log import PostgresEventLogStorage

from logpilot_dagster.dagster_instance.pool_claims import BLOCKED_WAIT_S
from logpilot_dagster.dagster_instance.postgres_storage import PoolSafePostgresEventLogStorage

SHIPPED_INSTANCE = Path(__file__).parents[1] / "data" / "dagster_home" / "dagster.yaml"
POOL = "duckdb_writer"


def _strand_a_step(storage) -> bool:
    """B holds the slot, frees it after A's check, A queues unassigned; returns whether A's next claim gets it."""
    storage.set_concurrency_slots(POOL, 1)
    assert storage.claim_concurrency_slot(POOL, "run-b", "logs_table").is_claimed
    storage.free_concurrency_slot_for_step("run-b", "logs_table")
    storage.add_pending_step(POOL, "run-a", "logs_table", should_assign=False)  # A's check saw no free slot
    return storage.claim_concurrency_slot(POOL, "run-a", "logs_table").is_claimed


def test_stock_dagster_strands_the_step(tmp_path):
    assert not _strand_a_step(SqliteEventLogStorage(str(tmp_path)))


def _database(postgres) -> str:
    name = f"pool_{uuid.uuid4().hex[:8]}"
    postgres.psql(f"CREATE DATABASE {name};")
    return postgres.get_uri(name)


@pytest.mark.parametrize("storage_class, claimed", [(PostgresEventLogStorage, False),
                                                    (PoolSafePostgresEventLogStorage, True)])
def test_on_postgres_only_the_production_storage_gives_the_slot(postgres, storage_class, claimed):
    """The event log storage of docs/deploy/dagster.yaml, on a real Postgres, against Dagster's own."""
    storage = storage_class(_database(postgres))
    try:
        assert _strand_a_step(storage) is claimed
    finally:
        storage.dispose()


def test_the_shipped_instance_gives_the_free_slot_to_the_queued_step(tmp_path, monkeypatch):
    shutil.copyfile(SHIPPED_INSTANCE, tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        assert _strand_a_step(instance.event_log_storage)
        # one slot still means one holder: a third run queues behind A
        assert not instance.event_log_storage.claim_concurrency_slot(POOL, "run-c", "logs_table").is_claimed
        assert (tmp_path / "storage" / "history" / "runs" / "index.db").exists()  # Dagster's own layout


def _sleep_til_ready(claims) -> None:
    """What Dagster's ActiveExecution.sleep_til_ready does while a step waits for a pool."""
    interval = claims.interval_to_next_pending_claim_check()
    if interval > 0:
        time.sleep(interval)


def _wait_as_dagsters_executor_does(instance, seconds: float) -> tuple[float, float]:
    """A step waits `seconds` for the pool (claim, then sleep what Dagster's executor sleeps), then the holder
    frees it; returns the CPU seconds spent waiting and how long the step took to get the freed slot."""
    storage = instance.event_log_storage
    storage.set_concurrency_slots(POOL, 1)
    assert storage.claim_concurrency_slot(POOL, "holder", "logs_table").is_claimed
    with InstanceConcurrencyContext(instance, dg.DagsterRun(job_name="bootstrap", run_id="waiter")) as claims:
        start, cpu = time.monotonic(), time.process_time()
        while time.monotonic() - start < seconds:
            assert not claims.claim(POOL, "logs_table")
            _sleep_til_ready(claims)
        cpu = time.process_time() - cpu
        storage.free_concurrency_slot_for_step("holder", "logs_table")
        freed = time.monotonic()
        while not claims.claim(POOL, "logs_table"):
            _sleep_til_ready(claims)
        return cpu, time.monotonic() - freed


def test_a_step_waiting_for_the_pool_sleeps_and_takes_the_freed_slot_at_once(tmp_path, monkeypatch):
    (tmp_path / "stock").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "stock")) as stock:
        stock_cpu, _ = _wait_as_dagsters_executor_does(stock, 1.0)
    assert stock_cpu > 0.5  # Dagster alone spins: its executor never sleeps between claim checks
    shutil.copyfile(SHIPPED_INSTANCE, tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        cpu, handover = _wait_as_dagsters_executor_does(instance, 1.0)
    assert cpu < 0.25 and handover < 2 * BLOCKED_WAIT_S, (cpu, handover)
