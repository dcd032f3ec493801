"""Dagster's SQLite instance storage with pool steps that cannot be stranded (``dagster.yaml``: ``storage: custom``).

Dagster 1.13's step claim checks for a free slot, then queues the step unassigned in a second statement. A slot
freed between the two (the other run's load finishing at that moment) assigns nobody, and the queued step then
waits forever ("Step still blocked by limit for pool duckdb_writer" every 5 minutes, no slot claimed): a
two-year UI backfill hung so on a clean clone. Here a blocked, unassigned claim that finds a free slot assigns
the queue's head and claims again, so the next retry (1-15 s, Dagster's backoff) recovers. Assigning one step
too many is harmless: the slot rows are still the semaphore."""
import os

from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.base import ConcurrencyClaimStatus
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._config import StringSource
from dagster._serdes import ConfigurableClassData


class PoolSafeEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` whose claims re-assign the pool queue when a slot is free and nobody holds it."""

    def claim_concurrency_slot(self, concurrency_key: str, run_id: str, step_key: str,
                               priority: int | None = None) -> ConcurrencyClaimStatus:
        status = super().claim_concurrency_slot(concurrency_key, run_id, step_key, priority)
        if status.is_claimed or status.is_assigned or not self.has_unassigned_slots(concurrency_key):
            return status
        self.assign_pending_steps([concurrency_key])
        return super().claim_concurrency_slot(concurrency_key, run_id, step_key, priority)


class PoolSafeSqliteStorage(DagsterSqliteStorage):
    """Dagster's default storage layout (``$DAGSTER_HOME/storage``) with ``PoolSafeEventLogStorage``."""

    def __init__(self, dagster_home: str, inst_data: ConfigurableClassData | None = None):
        self.dagster_home = dagster_home
        super().__init__(os.path.join(dagster_home, "storage"), inst_data=inst_data)
        self._event_log_storage = PoolSafeEventLogStorage(_event_logs_directory(self.base_dir))

    @classmethod
    def config_type(cls) -> dict:
        return {"dagster_home": StringSource}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: dict) -> "PoolSafeSqliteStorage":
        return cls(inst_data=inst_data, **config_value)

