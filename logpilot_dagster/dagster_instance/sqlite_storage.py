"""The embedded instance: Dagster's SQLite storage under ``$DAGSTER_HOME/storage`` with ``PoolSafeClaims``."""
import os

from dagster._config import StringSource
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._serdes import ConfigurableClassData

from logpilot_dagster.dagster_instance.pool_claims import PoolSafeClaims


class PoolSafeSqliteEventLogStorage(PoolSafeClaims, SqliteEventLogStorage):
    """``SqliteEventLogStorage`` whose pool steps cannot be stranded."""


class PoolSafeSqliteStorage(DagsterSqliteStorage):
    """Dagster's default storage layout (``dagster_home``/storage) with ``PoolSafeSqliteEventLogStorage``."""

    def __init__(self, dagster_home: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(os.path.join(dagster_home, "storage"), inst_data=inst_data)
        self._event_log_storage = PoolSafeSqliteEventLogStorage(_event_logs_directory(self.base_dir))

    @classmethod
    def config_type(cls) -> dict:
        return {"dagster_home": StringSource}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: dict) -> "PoolSafeSqliteStorage":
        return cls(inst_data=inst_data, **config_value)
