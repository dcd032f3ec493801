"""Production: Dagster's Postgres event log storage with ``PoolSafeClaims`` (``event_log_storage`` in
``docs/deploy/dagster.yaml``; runs and schedules use Dagster's own Postgres storages)."""
from dagster._serdes import ConfigurableClassData
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

from logpilot_dagster.dagster_instance.pool_claims import PoolSafeClaims


class PoolSafePostgresEventLogStorage(PoolSafeClaims, PostgresEventLogStorage):
    """``PostgresEventLogStorage`` whose pool steps cannot be stranded (same configuration)."""

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,
                          config_value: dict) -> "PoolSafePostgresEventLogStorage":
        return cls(inst_data=inst_data, postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   token_provider=get_token_provider_from_config(config_value))
