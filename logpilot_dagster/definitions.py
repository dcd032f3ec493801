"""The LogPilot code location: `logpilot dev` (or `dagster dev -w workspace.yaml`) loads `defs` from here."""

import dagster as dg

from logpilot_dagster.defs import analytics, backfill_assets, discovery, lifecycle, live, purge, vector_assets
from logpilot_dagster.defs.resources import default_resources

defs = dg.Definitions(
    assets=[
        backfill_assets.landing_files, backfill_assets.staged_year, backfill_assets.logs_table,
        backfill_assets.quarantine,
        backfill_assets.system_catalog, backfill_assets.t1_watermark, vector_assets.template_vectors,
        vector_assets.runbook_index, lifecycle.tier_catalog, live.raw_topic,
        analytics.template_series,
    ],
    asset_checks=[backfill_assets.line_accounting, backfill_assets.t1_is_sane],
    jobs=[backfill_assets.bootstrap, live.live_ingestion, lifecycle.tiering, lifecycle.restore, purge.purge,
          discovery.reparse_discovered, discovery.discover_live_source, analytics.template_analytics],
    schedules=[lifecycle.daily_tiering, analytics.hourly_template_analytics],
    sensors=[
        live.t1_gate, discovery.discovered_rules, discovery.unknown_live_sources,
        dg.AutomationConditionSensorDefinition(
            "logpilot_automation", target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.RUNNING,
            description="Runs `t1_watermark`, `template_vectors`, `runbook_index` and `template_series` once their inputs' data "
                        "versions changed and the blocking checks passed, and the assets' other automation "
                        "conditions."),
    ],
    resources={**default_resources(), "live": live.live_resource(), "tier_store": lifecycle.tier_store_resource(),
               "discovery": discovery.discovery_resource()},
    # in-process runs, also for the UI's "Materialize" (the implicit asset job): no worker process per step;
    # parallelism comes from the run queue (dagster.yaml), DuckDB writers still take turns on their pool
    executor=dg.in_process_executor,
)
