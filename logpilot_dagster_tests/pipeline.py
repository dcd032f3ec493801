"""Test helpers: build a LOGPILOT_HOME through the real Dagster assets (no mocks)."""

from pathlib import Path

import dagster as dg

from logpilot_dagster.defs import backfill_assets as ba
from logpilot_dagster.defs import vector_assets as va
from logpilot_dagster.defs.resources import LandingZone, LogPilotHome, S3Connection
from logpilot_dagster.ingest.sample_data import write_sample_home

PARTITIONED = [ba.landing_files, ba.staged_year, ba.logs_table, ba.line_accounting]
GLOBAL = [ba.system_catalog, ba.t1_watermark, ba.t1_is_sane]


def resources(home: Path, landing_zone: LandingZone | None = None) -> dict:
    return {"logpilot": LogPilotHome(home=str(home)),
            "landing_zone": landing_zone or LandingZone(s3=S3Connection(region_name="us-east-1"))}


def materialize_year(home: Path, year: int, instance: dg.DagsterInstance | None = None,
                     landing_zone: LandingZone | None = None) -> dg.ExecuteInProcessResult:
    result = dg.materialize(PARTITIONED, partition_key=str(year), resources=resources(home, landing_zone),
                            instance=instance)
    assert result.success
    return result


def materialize_globals(home: Path, vectors: bool = False) -> dg.ExecuteInProcessResult:
    result = dg.materialize(GLOBAL + ([va.template_vectors, va.runbook_index] if vectors else []), resources=resources(home))
    assert result.success
    return result


def build_home(home: Path, years: tuple[int, ...], lines: int, vectors: bool = False) -> dict:
    """Sample landing zone, then one Dagster run per year and the global assets; returns the sample manifest."""
    manifest = write_sample_home(home, total_lines=lines, years=years)
    for year in years:
        materialize_year(home, year)
    materialize_globals(home, vectors)
    return manifest


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key.path[-1] == asset:
            return {k: v.value for k, v in event.step_materialization_data.materialization.metadata.items()}
    raise KeyError(asset)
