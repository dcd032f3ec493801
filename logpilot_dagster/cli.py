"""``logpilot``: the command line (sample data, backfill, Dagster UI, demo; live and agent commands plug in)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from logpilot_dagster.settings import SHIPPED_DATA, LogPilotPaths


def _years(spec: str | None) -> list[int]:
    """``2021-2025`` | ``2022,2024`` | None (every year that has landing files)."""
    if not spec:
        return []
    years: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        years.extend(range(int(lo), int(hi or lo) + 1))
    return years


def use_home(home: str | None) -> LogPilotPaths:
    """Pin ``LOGPILOT_HOME`` and a ``DAGSTER_HOME`` inside it (with the shipped dagster.yaml) for this process."""
    paths = LogPilotPaths.from_env(home).ensure()
    os.environ["LOGPILOT_HOME"] = str(paths.home)
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or paths.home / "dagster_home")
    dagster_home.mkdir(parents=True, exist_ok=True)
    if not (dagster_home / "dagster.yaml").exists():
        shutil.copyfile(SHIPPED_DATA / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return paths


def cmd_sample(args: argparse.Namespace) -> int:
    from logpilot_dagster.ingest.sample_data import write_sample_home

    paths = use_home(args.home)
    if paths.landing_zone.exists() and any(paths.landing_zone.iterdir()) and not args.force:
        print(f"landing zone {paths.landing_zone} is not empty; use --force to rewrite it")
        return 0
    shutil.rmtree(paths.landing_zone, ignore_errors=True)
    start = time.perf_counter()
    manifest = write_sample_home(paths.home, total_lines=args.lines)
    print(f"wrote {manifest['lines']:,} lines in {manifest['files']} files (+{len(manifest['bad_files'])} bad files)"
          f" to {paths.landing_zone} in {time.perf_counter() - start:.1f}s")
    return 0


def run_backfill(paths: LogPilotPaths, years: list[int], progress: bool = True) -> list[dict]:
    """Materialize the bootstrap assets in-process, one Dagster run per year partition (what the UI does)."""
    import dagster as dg

    from logpilot_dagster.ingest.backfill import list_landing_files
    from logpilot_dagster.defs import analytics as an
    from logpilot_dagster.defs import backfill_assets as ba
    from logpilot_dagster.defs import vector_assets as va
    from logpilot_dagster.defs.resources import default_resources
    from logpilot_dagster.storage.file_lock import hold
    from logpilot_dagster.storage.object_store import LocalObjectStore
    from logpilot_dagster.ingest.registry import SchemaRegistry

    if not years:
        registry = SchemaRegistry.load(paths)
        years = sorted({f.year for f in list_landing_files(LocalObjectStore(paths.landing_zone), registry) if f.year})
    valid = set(ba.yearly_partitions.get_partition_keys())
    skipped = [y for y in years if str(y) not in valid]
    if skipped:
        print(f"skipping years outside the partitions ({min(valid)}..{max(valid)}): {skipped}")
    resources = default_resources()
    resources["logpilot"] = resources["logpilot"].model_copy(update={"show_progress": progress})
    with hold(Path(os.environ["DAGSTER_HOME"]) / "instance.lock", "create the Dagster instance", 300):
        instance = dg.DagsterInstance.get()  # two first runs at once raced to create its tables
        instance.get_runs(limit=1)
    quiet_logs = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    summary = []
    partitioned = [ba.landing_files, ba.staged_year, ba.logs_table, ba.line_accounting]
    for year in [y for y in years if str(y) not in skipped]:
        result = dg.materialize(partitioned, partition_key=str(year), resources=resources, instance=instance,
                                tags={"logpilot/cli": "backfill"}, run_config=quiet_logs)
        meta = {str(e.asset_key.path[-1]): e.step_materialization_data.materialization.metadata
                for e in result.get_asset_materialization_events()}
        row = {"year": year, "lines_read": meta["logs_parquet"]["lines_read"].value,
               "rows": meta["logs_table"]["rows"].value, "quarantined": meta["logs_table"]["quarantined"].value,
               "lines_per_s": meta["logs_parquet"]["lines_per_s"].value}
        summary.append(row)
        print(f"  {year}: {row['lines_read']:>10,} lines read  {row['rows']:>10,} rows  "
              f"{row['quarantined']:>5} quarantined  ({row['lines_per_s']:,} lines/s staging)")
    dg.materialize([ba.system_catalog, ba.t1_watermark, ba.t1_is_sane, va.template_vectors, va.runbook_index,
                    an.template_series],
                   resources=resources,
                   instance=instance, tags={"logpilot/cli": "backfill"}, run_config=quiet_logs)
    return summary


def cmd_backfill(args: argparse.Namespace) -> int:
    paths = use_home(args.home)
    from logpilot_dagster.ingest.backfill import backfill_t1

    start = time.perf_counter()
    summary = run_backfill(paths, _years(args.years), progress=not args.quiet)
    total = sum(r["lines_read"] for r in summary)
    print(f"backfilled {len(summary)} years, {total:,} lines in {time.perf_counter() - start:.1f}s; "
          f"T1 = {backfill_t1(paths)}; DuckDB: {paths.db_path}")
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from logpilot_dagster.dev_server import serve

    use_home(args.home)
    workspace = Path(__file__).resolve().parent.parent / "workspace.yaml"
    print(f"DAGSTER_HOME={os.environ['DAGSTER_HOME']}: Dagster UI on http://{args.host}:{args.port} ({workspace})")
    return serve(workspace, args.host, args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="logpilot", description=__doc__)
    parser.add_argument("--home", help="LOGPILOT_HOME (default: $LOGPILOT_HOME or ./data)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample", help="write the sample landing zone and sources.yaml")
    p.add_argument("--lines", type=int, default=3_000_000)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("backfill", help="materialize the bootstrap assets for year partitions in-process")
    p.add_argument("--years", help="e.g. 2021-2025 or 2022,2024 (default: every year with landing files)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("dev", help="start the Dagster UI and daemon on this home")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_dev)

    from logpilot_dagster.agent.cli import register as register_agent
    from logpilot_dagster.analytics.cli import register as register_analytics
    from logpilot_dagster.demo import register as register_demo
    from logpilot_dagster.lake_local import register as register_lake
    from logpilot_dagster.lifecycle_cli import register as register_lifecycle
    from logpilot_dagster.lifecycle.purge_cli import register as register_purge
    from logpilot_dagster.discovery.cli import register as register_discovery
    from logpilot_dagster.stream.cli import register as register_stream

    register_demo(sub)
    register_lake(sub)
    register_stream(sub)
    register_agent(sub)
    register_lifecycle(sub)
    register_purge(sub)
    register_discovery(sub)
    register_analytics(sub)
    for command in sub.choices.values():  # `logpilot dev --home H` as well as `logpilot --home H dev`
        if "--home" not in command._option_string_actions:
            command.add_argument("--home", default=argparse.SUPPRESS, help="LOGPILOT_HOME (as before the command)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
