"""The LogPilot code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here."""

import dagster as dg

from logpilot_dagster.defs import backfill_assets, lifecycle, live, purge, vector_assets
from logpilot_dagster.defs.resources import default_resources

defs = dg.Definitions(
    assets=[
        backfill_assets.landing_files, backfill_assets.staged_year, backfill_assets.logs_table,
        backfill_assets.system_catalog, backfill_assets.t1_watermark, vector_assets.template_vectors,
        vector_assets.runbook_index, lifecycle.tier_catalog,
    ],
    asset_checks=[backfill_assets.line_accounting, backfill_assets.t1_is_sane],
    jobs=[live.live_ingestion, lifecycle.tiering, lifecycle.restore, purge.purge],
    schedules=[lifecycle.daily_tiering],
    sensors=[
        live.t1_gate,
        dg.AutomationConditionSensorDefinition("logpilot_automation", target=dg.AssetSelection.all(),
                                               default_status=dg.DefaultSensorStatus.RUNNING),
    ],
    resources={**default_resources(), "live": live.live_resource(),
               "tier_store": lifecycle.tier_store_resource()},
)
