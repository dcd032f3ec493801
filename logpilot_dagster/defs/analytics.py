"""Template analytics in Dagster: the hourly series asset, whose checks raise new-template alerts and
frequency anomalies, refreshed after every year load and hourly for the live stream."""

import dagster as dg

from logpilot_dagster.analytics.anomalies import AnomalySettings, detect_anomalies
from logpilot_dagster.analytics.new_templates import detect_new_templates
from logpilot_dagster.analytics.series import update_series
from logpilot_dagster.defs.automation import after_checks_when_inputs_change
from logpilot_dagster.defs.backfill_assets import WRITER_POOL
from logpilot_dagster.defs.resources import LogPilotHome
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.warehouse import connect

GROUP = "analytics"


class AnalyticsConfig(dg.Config, AnomalySettings):
    """Detector thresholds (see `logpilot_dagster/analytics/anomalies.py` for their meaning) and whether new
    templates look up their nearest runbook."""

    runbooks: bool = True


def _runbook_finder(paths: LogPilotPaths):
    """A runbook lookup that opens the knowledge base (llama-index: seconds to import) on its first call only,
    so a refresh without new templates never pays for it."""
    kb = None

    def find(service: str, text: str) -> str | None:
        """The best runbook for the service or for any service; another service's runbook is no answer."""
        nonlocal kb
        if kb is None:
            from logpilot_dagster.knowledge.knowledge_base import KnowledgeBase

            kb = KnowledgeBase(paths.chroma_dir, paths.runbooks_dir)
        hits = kb.search(text, k=5, service=service, kinds=("runbook",))
        return next((hit.source for hit in hits if hit.service in (None, "", service)), None)

    return find


def _event_rows(events: list[dict]) -> dg.MetadataValue:
    keep = ("kind", "service", "template_id", "severity", "observed", "expected", "score", "runbook", "detail")
    return dg.MetadataValue.json([{k: e.get(k) for k in keep} for e in events[:50]])


@dg.asset(group_name=GROUP, kinds={"duckdb"}, pool=WRITER_POOL, deps=["logs_table"],
          automation_condition=after_checks_when_inputs_change(),
          check_specs=[dg.AssetCheckSpec("no_new_templates", asset="template_series",
                                         description="No template first seen after T1 that history never saw."),
                       dg.AssetCheckSpec("no_frequency_anomalies", asset="template_series",
                                         description="No spike, drop to zero or error-share jump in the last "
                                                     "window against its seasonal baseline.")])
def template_series(config: AnalyticsConfig, logpilot: LogPilotHome) -> dg.MaterializeResult:
    """Lines, errors and bytes per template per hour (`template_hourly`; daily costs in
    `template_costs_daily`), updated incrementally; new templates and anomalies go to `template_events`."""
    from logpilot_dagster.ingest.backfill import published_t1  # pyarrow: not at code location load

    paths = logpilot.paths
    t1 = published_t1(paths)
    settings = AnomalySettings(**config.model_dump(exclude={"runbooks"}))
    with connect(paths.db_path) as con:
        update = update_series(con)
        new = detect_new_templates(con, t1, _runbook_finder(paths) if config.runbooks else None) if t1 else []
        anomalies = detect_anomalies(con, settings)
        rows, templates = con.execute("SELECT count(*), count(DISTINCT template_id) FROM template_hourly").fetchone()
    return dg.MaterializeResult(
        metadata={"dagster/row_count": rows, "templates": templates, "hours": update.hours,
                  "years_recomputed": dg.MetadataValue.json(update.years_recomputed),
                  "live_rows_added": update.live_rows_added, "dagster/table_name": "template_hourly"},
        check_results=[
            dg.AssetCheckResult(check_name="no_new_templates", passed=not new, severity=dg.AssetCheckSeverity.WARN,
                                metadata={"new_templates": len(new), "events": _event_rows(new),
                                          "t1": t1.isoformat() if t1 else None}),
            dg.AssetCheckResult(check_name="no_frequency_anomalies", passed=not anomalies,
                                severity=dg.AssetCheckSeverity.WARN,
                                metadata={"anomalies": len(anomalies), "events": _event_rows(anomalies)}),
        ])


template_analytics = dg.define_asset_job("template_analytics", selection=[template_series],
                                         description="Refresh the template series and run the detectors.")
hourly_template_analytics = dg.ScheduleDefinition(
    name="hourly_template_analytics", job=template_analytics, cron_schedule="5 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Counts the live stream's new rows into the series and raises alerts every hour.")
