"""The ``purge`` job: right to be forgotten, the same request and receipt as ``logpilot purge``."""

from datetime import datetime

import dagster as dg

from logpilot_dagster.defs.backfill_assets import WRITER_POOL
from logpilot_dagster.defs.resources import LandingZone, LogPilotHome


class PurgeConfig(dg.Config):
    """Exactly one of ``email``, ``subject_id``, ``value`` or ``service`` (with ``start``/``end``, ISO, UTC).

    Dagster keeps a run's config in its run storage: a purge launched here leaves the value there (the receipt
    lists that file as residual when it lies under the home); ``logpilot purge`` leaves no such trace."""

    email: str = ""
    subject_id: str = ""
    value: str = ""
    service: str = ""
    start: str = ""
    end: str = ""
    include_landing: bool = False
    dry_run: bool = False


@dg.op(pool=WRITER_POOL, tags={"logpilot/phase": "lifecycle"})
def purge_subject(context: dg.OpExecutionContext, config: PurgeConfig, logpilot: LogPilotHome,
                  landing_zone: LandingZone) -> dict:
    """Remove the subject from hot, warm and cold tiers, quarantine, discovery queue, templates, registry
    state, Chroma and staged Parquet, rewrite what held it, and store the receipt."""
    from logpilot_dagster.lifecycle.matching import PurgeRequest
    from logpilot_dagster.lifecycle.purge import purge
    from logpilot_dagster.lifecycle.receipts import format_receipt

    request = PurgeRequest(email=config.email or None, subject_id=config.subject_id or None,
                           value=config.value or None, service=config.service or None,
                           start=datetime.fromisoformat(config.start) if config.start else None,
                           end=datetime.fromisoformat(config.end) if config.end else None)
    paths = logpilot.paths
    receipt = purge(paths, request, landing_zone.store(paths), include_landing=config.include_landing,
                    dry_run=config.dry_run)
    context.log.info(format_receipt(receipt))
    context.add_output_metadata({"request_id": receipt["request_id"], "rows_touched": receipt["total_touched"],
                                 "objects_rewritten": receipt["objects"]["rewritten"],
                                 "landing_files": len(receipt["landing"]["files"]),
                                 "residual_files": len(receipt["residual"])})
    return receipt


@dg.job(tags={"logpilot/phase": "lifecycle"})
def purge():
    """Right to be forgotten for one subject (email, subject id, value, or a service's time range)."""
    purge_subject()
