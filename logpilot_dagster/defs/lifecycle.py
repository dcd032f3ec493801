"""Lifecycle in Dagster (group ``lifecycle``): the ``tiering`` job over the ``tier_catalog`` asset, its daily
schedule, and the ``restore`` job. The work is in ``logpilot_dagster.lifecycle``."""

import dataclasses
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Optional

import dagster as dg

from logpilot_dagster.defs.backfill_assets import WRITER_POOL, logs_table
from logpilot_dagster.defs.resources import LogPilotHome, S3Connection, env_or, s3_connection
from logpilot_dagster.lifecycle.settings import TierStoreSettings
from logpilot_dagster.lifecycle.store import tier_store
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.object_store import ObjectStore

GROUP = "lifecycle"


class TierStore(dg.ConfigurableResource):
    """The warm/cold tier store: ``$LOGPILOT_HOME/tiers`` unless an S3 bucket is configured."""

    s3_bucket: str = ""
    s3_prefix: str = ""
    cold_storage_class: str = "GLACIER"
    s3: dg.ResourceDependency[S3Connection]

    def settings(self, paths: LogPilotPaths) -> TierStoreSettings:
        return dataclasses.replace(TierStoreSettings.from_env(paths), bucket=self.s3_bucket,
                                   prefix=self.s3_prefix.strip("/"), cold_storage_class=self.cold_storage_class)

    def store(self, settings: TierStoreSettings) -> ObjectStore:
        return tier_store(settings, self.s3.get_client() if settings.is_s3 else None)


def tier_store_resource() -> TierStore:
    return TierStore(s3_bucket=env_or("LOGPILOT_TIER_BUCKET", ""), s3_prefix=env_or("LOGPILOT_TIER_PREFIX", ""),
                     cold_storage_class=env_or("LOGPILOT_COLD_STORAGE_CLASS", "GLACIER"),
                     s3=s3_connection())


class TieringConfig(dg.Config):
    """Ages in days before ``now`` (ISO time; empty: the run's start). ``delete_after_days`` empty: no
    retention."""

    warm_after_days: float = 30
    cold_after_days: float = 365
    delete_after_days: Optional[float] = None
    restore_days: int = 7
    now: str = ""


def _time(value: str) -> datetime | None:
    """An ISO time as naive UTC (the warehouse's ``ts``); empty: None."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.astimezone(timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed


@dg.asset(group_name=GROUP, kinds={"duckdb", "parquet"}, pool=WRITER_POOL, deps=[logs_table])
def tier_catalog(context: dg.AssetExecutionContext, config: TieringConfig, logpilot: LogPilotHome,
                 tier_store: TierStore) -> dg.MaterializeResult:
    """Every warm/cold object (tier, key, service, month, time range, rows, sha256), kept by moving hot rows
    older than `warm_after_days` to warm Parquet and warm objects older than `cold_after_days` to cold."""
    from logpilot_dagster.lifecycle.tiering import Tiering, TieringPolicy  # pyarrow: not at code location load

    paths = logpilot.paths
    settings = tier_store.settings(paths)
    policy = TieringPolicy(config.warm_after_days, config.cold_after_days, config.delete_after_days,
                           config.restore_days)
    now = _time(config.now) or datetime.now(timezone.utc).replace(tzinfo=None)
    report = Tiering(paths, tier_store.store(settings), settings, policy, now).run()
    context.log.info(f"tiering: {report.rows_to_warm:,} rows to warm, {report.rows_to_cold:,} to cold")
    tiers = report.tiers
    return dg.MaterializeResult(metadata={
        "dagster/row_count": sum(t.get("objects", 0) for t in tiers.values()),
        "rows_to_warm": report.rows_to_warm, "rows_to_cold": report.rows_to_cold,
        "warm_objects_written": report.warm_objects_written, "cold_objects_written": report.cold_objects_written,
        "hot_rows_deleted": report.hot_rows_deleted, "tier_rows_deleted": report.tier_rows_deleted,
        "garbage_deleted": report.garbage_deleted, "restored_expired": report.restored_expired,
        "rows_by_tier": dg.MetadataValue.json(tiers), "store": settings.root, "now": report.now})


tiering = dg.define_asset_job("tiering", selection=[tier_catalog], tags={"logpilot/phase": "lifecycle"},
                              description="Retention, hot → warm → cold, garbage collection.")

#: Running by default: the lifecycle policy is the product's (rows older than 30 days leave DuckDB);
#: answers stay the same through ``logs_all``. Stop it in the UI to keep everything hot.
daily_tiering = dg.ScheduleDefinition(name="daily_tiering", job=tiering, cron_schedule="30 2 * * *",
                                      execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)


class RestoreConfig(dg.Config):
    """Restore cold objects of ``service`` (empty: every service) with rows in ``start <= ts < end`` (ISO)."""

    start: str
    end: str
    service: str = ""
    days: int = 7


@dg.op(pool=WRITER_POOL, tags={"kind": "s3"})
def restore_cold_objects(context: dg.OpExecutionContext, config: RestoreConfig, logpilot: LogPilotHome,
                         tier_store: TierStore) -> dict:
    """Restore the range's cold objects and refresh `logs_all`; pending S3 restores are listed."""
    from logpilot_dagster.lifecycle.restore import restore_range

    paths = logpilot.paths
    settings = tier_store.settings(paths)
    report = restore_range(paths, tier_store.store(settings), settings, _time(config.start), _time(config.end),
                           config.service or None, config.days)
    context.add_output_metadata({"objects_restored": report.objects_restored, "rows_restored": report.rows_restored,
                                 "pending": len(report.pending)})
    return asdict(report)


@dg.job(name="restore", tags={"logpilot/phase": "lifecycle"})
def restore():
    """Make a range of cold data readable again through `logs_all`."""
    restore_cold_objects()
