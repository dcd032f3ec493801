"""Bootstrap assets, one partition per year: landing files -> templates + Parquet -> DuckDB `logs` -> T1.

The pipeline (`ingest.backfill`: pyarrow, drain3) is imported in the asset bodies, so loading the code location
does not pay for it.
"""

import hashlib
import json
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
from tqdm import tqdm

from logpilot_dagster.defs.automation import after_checks_when_inputs_change
from logpilot_dagster.defs.partitions import yearly_partitions
from logpilot_dagster.defs.resources import LandingZone, LogPilotHome, landing_kind
from logpilot_dagster.defs.table_metadata import column_schema, sizes, table_name
from logpilot_dagster.storage import profile
from logpilot_dagster.storage.warehouse import connect

GROUP = "bootstrap"
WRITER_POOL = "duckdb_writer"
#: Year loads take turns on the embedded file; on the lake they commit concurrently (``storage.profile``).
LOAD_POOL = None if profile.is_lake() else WRITER_POOL


def _year(context: dg.AssetExecutionContext) -> int:
    return int(context.partition_key)


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


@dg.asset(partitions_def=yearly_partitions, group_name=GROUP, kinds={landing_kind()})
def landing_files(context: dg.AssetExecutionContext, logpilot: LogPilotHome,
                  landing_zone: LandingZone) -> dg.MaterializeResult:
    """The year's raw log files in the landing zone (local directory or S3 prefix), with their sources."""
    from logpilot_dagster.ingest import backfill
    from logpilot_dagster.privacy.pii import default_masker

    store = landing_zone.store(logpilot.paths)
    files = backfill.list_landing_files(store, logpilot.registry())
    year = _year(context)
    mine = [f for f in files if f.year == year]
    mask = default_masker().mask  # file names may hold PII: metadata and logs are stored in Dagster's storage
    refused = {mask(f.key): mask(f"{f.problem}: {f.detail}") for f in files if f.problem and f.year in (year, None)}
    if refused:
        context.log.warning(f"{len(refused)} landing files are quarantined whole, not read: "
                            + "; ".join(f"{k} ({v})" for k, v in list(refused.items())[:5]))
    return dg.MaterializeResult(metadata={
        "files": len(mine), **sizes(sum(f.size for f in mine)),
        "undeclared_files": dg.MetadataValue.json([mask(f.key) for f in mine if f.source_name is None]),
        "files_without_year": sum(1 for f in files if f.year is None),
        "refused_files": dg.MetadataValue.json(dict(list(refused.items())[:100])), "store": store.uri,
    })


@dg.multi_asset(
    partitions_def=yearly_partitions, group_name=GROUP,
    specs=[
        dg.AssetSpec("log_templates", description="Drain3 templates mined from the year (stable ids, aliases); "
                     "loaded into the DuckDB `templates` table with the year's rows.",
                     kinds={"python"}, deps=[landing_files], group_name=GROUP, metadata=column_schema("templates")),
        dg.AssetSpec("logs_parquet", description="The year's parsed, PII-masked lines as zstd Parquet (staging).",
                     kinds={"parquet"}, deps=[landing_files], group_name=GROUP),
    ],
)
def staged_year(context: dg.AssetExecutionContext, logpilot: LogPilotHome, landing_zone: LandingZone):
    """Read, parse, mask and mine one year in a single streamed pass; never opens DuckDB, so years run in
    parallel."""
    from logpilot_dagster.ingest import backfill

    paths = logpilot.paths
    bar = tqdm(unit=" lines", desc=f"stage {context.partition_key}", disable=not logpilot.show_progress,
               unit_scale=True)
    try:
        result = backfill.stage_year(paths, landing_zone.store(paths), logpilot.registry(), _year(context),
                                     progress=bar.update)
    finally:
        bar.close()
    quarantine = {k.split(".", 1)[1]: v for k, v in result.stats.items() if k.startswith("quarantine.")}
    pii = {k.split(".", 1)[1]: v for k, v in result.stats.items() if k.startswith("pii.")}
    logs_dir = backfill.year_dirs(paths, result.year)[0]
    yield dg.MaterializeResult(asset_key="log_templates", metadata={
        "templates": result.templates, "dagster/row_count": result.templates, **table_name(paths.db_path, "templates"),
        "pii_masked": dg.MetadataValue.json(pii)})
    yield dg.MaterializeResult(asset_key="logs_parquet", metadata={
        "lines_read": result.lines_read, "rows": result.rows, "dagster/row_count": result.rows,
        "quarantined": result.quarantined,
        "quarantine_by_reason": dg.MetadataValue.json(quarantine), "files": len(result.files),
        "undated_files": dg.MetadataValue.json(result.undated[:100]),
        "seconds": round(result.seconds, 2), "lines_per_s": round(result.lines_per_s),
        **sizes(_tree_bytes(logs_dir)), "path": dg.MetadataValue.path(str(logs_dir)),
    })


def _staged_version(paths, year: int) -> dg.DataVersion:
    """What the year's load is made of (the shard document, its timings aside): a replay of unchanged input keeps
    the version, so nothing downstream re-runs."""
    from logpilot_dagster.ingest import backfill

    shard = json.loads(backfill.year_dirs(paths, year)[2].read_text())
    shard.pop("seconds", None)
    shard.pop("timings", None)
    return dg.DataVersion(hashlib.sha256(json.dumps(shard, sort_keys=True, default=str).encode()).hexdigest()[:16])


quarantine = dg.AssetSpec(
    "quarantine", description="The year's lines that could not be parsed, masked, with source, offset and "
    "reason (DuckDB `quarantine`); written by `logs_table` in the same transaction.", kinds={"duckdb"},
    deps=["logs_parquet"], group_name=GROUP, partitions_def=yearly_partitions, metadata=column_schema("quarantine"))


@dg.asset(partitions_def=yearly_partitions, group_name=GROUP, kinds={"duckdb"}, pool=LOAD_POOL,
          deps=["logs_parquet", "log_templates"], metadata=column_schema("logs"))
def logs_table(context: dg.AssetExecutionContext, logpilot: LogPilotHome) -> dg.MaterializeResult:
    """The DuckDB `logs` rows of the year, replaced in one transaction from the staged Parquet (with the
    year's `quarantine` rows, reported as that asset's materialization)."""
    from logpilot_dagster.ingest import backfill
    from logpilot_dagster.lifecycle.views import refresh_logs_all

    paths = logpilot.paths
    # a year loaded again after it was tiered is in hot and in warm: logs_all reads the hot copy only
    result = backfill.load_year(paths, logpilot.registry(), _year(context),
                                also=lambda con: refresh_logs_all(con, paths))
    version = _staged_version(paths, result.year)
    context.log_event(dg.AssetMaterialization(
        asset_key=quarantine.key, partition=context.partition_key, tags={"dagster/data_version": version.value},
        metadata={"dagster/row_count": result.quarantined, **table_name(paths.db_path, "quarantine")}))
    return dg.MaterializeResult(data_version=version, metadata={
        "rows": result.rows, "dagster/row_count": result.rows, **table_name(paths.db_path, "logs"),
        "quarantined": result.quarantined, "lines_read": result.lines_read,
        "templates_total": result.templates, "seconds": round(result.seconds, 2),
        "accounted": result.rows + result.quarantined == result.lines_read,
    })


def _line_accounting(context: dg.AssetCheckExecutionContext, logpilot: LogPilotHome) -> dg.AssetCheckResult:
    from logpilot_dagster.ingest import backfill

    paths = logpilot.paths
    year = int(context.op_execution_context.partition_key)
    shard = json.loads(backfill.year_dirs(paths, year)[2].read_text())
    with connect(paths.db_path, read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM logs WHERE year = ? AND source IN "
                           "(SELECT source FROM loaded_files WHERE year = ?)", [year, year]).fetchone()[0]
        quarantined = con.execute("SELECT count(*) FROM quarantine WHERE source IN "
                                  "(SELECT source FROM loaded_files WHERE year = ?)", [year]).fetchone()[0]
    return dg.AssetCheckResult(passed=rows + quarantined == shard["lines_read"], metadata={
        "year": year, "lines_read": shard["lines_read"], "rows": rows, "quarantined": quarantined})


with warnings.catch_warnings():  # a check per partition is a preview in dagster 1.13; it is what the UI needs
    warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec")
    line_accounting = dg.asset_check(
        asset="logs_table", name="line_accounting", blocking=True, partitions_def=yearly_partitions,
        description="Every line read in the year is in `logs` or `quarantine`.")(_line_accounting)


bootstrap = dg.define_asset_job(
    "bootstrap", selection=dg.AssetSelection.assets(landing_files, staged_year, logs_table),
    executor_def=dg.in_process_executor, tags={"logpilot/phase": "bootstrap"},
    description="Stage and load one year in one process (no worker start per step); years run as parallel runs "
                "from the run queue and their loads take turns on the `duckdb_writer` pool.")


@dg.asset(group_name=GROUP, kinds={"duckdb"}, pool=WRITER_POOL, metadata=column_schema("system_catalog"))
def system_catalog(logpilot: LogPilotHome) -> dg.MaterializeResult:
    """Services with their department, owner and criticality, from `system_catalog.csv`."""
    from logpilot_dagster.ingest import backfill

    rows = backfill.load_catalog(logpilot.paths)
    return dg.MaterializeResult(metadata={"rows": rows, "dagster/row_count": rows,
                                          **table_name(logpilot.paths.db_path, "system_catalog"),
                                          "source": str(logpilot.paths.catalog_csv)})


@dg.asset(group_name=GROUP, kinds={"duckdb"}, deps=["logs_table"],
          automation_condition=after_checks_when_inputs_change())
def t1_watermark(logpilot: LogPilotHome) -> dg.MaterializeResult:
    """T1: the latest event time the backfill covers; live ingestion starts after it."""
    from logpilot_dagster.ingest import backfill
    from logpilot_dagster.ingest.registry import write_json

    paths = logpilot.paths
    t1 = backfill.backfill_t1(paths)
    if t1 is not None:
        write_json(paths.state_dir / "t1.json", {"t1": t1.isoformat()})
    return dg.MaterializeResult(metadata={"t1": t1.isoformat() if t1 else None},
                                data_version=dg.DataVersion(t1.isoformat() if t1 else "none"))


@dg.asset_check(asset=t1_watermark, blocking=True, description="T1 exists, is not in the future and matches logs.")
def t1_is_sane(logpilot: LogPilotHome) -> dg.AssetCheckResult:
    from logpilot_dagster.ingest import backfill

    paths = logpilot.paths
    t1 = backfill.backfill_t1(paths)
    saved = json.loads((paths.state_dir / "t1.json").read_text())["t1"] if (paths.state_dir / "t1.json").exists() \
        else None
    ok = t1 is not None and t1 <= datetime.utcnow() + timedelta(minutes=5) and saved == t1.isoformat()
    return dg.AssetCheckResult(passed=ok, metadata={"t1": t1.isoformat() if t1 else None, "published": saved})
