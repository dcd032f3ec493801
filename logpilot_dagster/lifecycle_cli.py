"""``logpilot tier`` and ``logpilot restore``: the lifecycle Dagster jobs, run in-process."""

from __future__ import annotations

import argparse

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _resources() -> dict:
    from logpilot_dagster.defs.lifecycle import tier_store_resource
    from logpilot_dagster.defs.resources import default_resources

    return {**default_resources(), "tier_store": tier_store_resource()}


def run_tiering(now: str = "", **policy) -> dict:
    """Materialize ``tier_catalog`` (the ``tiering`` job) in-process; returns its metadata."""
    import dagster as dg

    from logpilot_dagster.defs.lifecycle import tier_catalog

    config = {"now": now, **{k: v for k, v in policy.items() if v is not None}}
    result = dg.materialize([tier_catalog], resources=_resources(), instance=dg.DagsterInstance.get(),
                            run_config={"ops": {"tier_catalog": {"config": config}}, **QUIET},
                            tags={"logpilot/cli": "tier"})
    [event] = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.step_materialization_data.materialization.metadata.items()}


def run_restore(start: str, end: str, service: str = "", days: int = 7) -> dict:
    """Run the ``restore`` job in-process; returns its report."""
    import dagster as dg

    from logpilot_dagster.defs.lifecycle import restore

    config = {"start": start, "end": end, "service": service, "days": days}
    result = restore.execute_in_process(
        resources=_resources(), instance=dg.DagsterInstance.get(), tags={"logpilot/cli": "restore"},
        run_config={"ops": {"restore_cold_objects": {"config": config}}, **QUIET})
    return result.output_for_node("restore_cold_objects")


def print_tiering(meta: dict) -> None:
    print(f"   tiering at {meta['now']}: {meta['rows_to_warm']:,} rows hot -> warm "
          f"({meta['warm_objects_written']} objects), {meta['rows_to_cold']:,} rows warm -> cold "
          f"({meta['cold_objects_written']} objects); deleted by retention: {meta['hot_rows_deleted']:,} hot rows, "
          f"{meta['tier_rows_deleted']:,} tier rows; garbage removed: {meta['garbage_deleted']}")
    tiers = ", ".join(f"{tier} {v['rows']:,} rows" + (f" in {v['objects']} objects" if "objects" in v else "")
                      for tier, v in meta["rows_by_tier"].items())
    print(f"   now: {tiers}  (store: {meta['store']})")


def cmd_tier(args: argparse.Namespace) -> int:
    from logpilot_dagster.cli import use_home

    use_home(args.home)
    print_tiering(run_tiering(args.now or "", warm_after_days=args.warm_after_days,
                              cold_after_days=args.cold_after_days, delete_after_days=args.delete_after_days))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from logpilot_dagster.cli import use_home

    use_home(args.home)
    report = run_restore(args.start, args.end, args.service or "", args.days)
    print(f"restored {report['objects_restored']} objects ({report['rows_restored']:,} rows) readable through "
          f"logs_all for {args.days} days: {', '.join(report['months']) or 'nothing was cold in that range'}")
    if report["pending"]:
        print(f"{len(report['pending'])} restores still in progress; run the same command again later")
    return 0


def register(sub) -> None:
    p = sub.add_parser("tier", help="run the tiering job in-process (hot -> warm -> cold, retention)")
    p.add_argument("--now", help="the run's clock, ISO time (default: now); ages data for tests and the demo")
    p.add_argument("--warm-after-days", type=float)
    p.add_argument("--cold-after-days", type=float)
    p.add_argument("--delete-after-days", type=float, help="retention (default: keep forever)")
    p.set_defaults(func=cmd_tier)

    p = sub.add_parser("restore", help="restore cold objects of a time range so logs_all reads them")
    p.add_argument("--from", dest="start", required=True, help="ISO time (inclusive)")
    p.add_argument("--to", dest="end", required=True, help="ISO time (exclusive)")
    p.add_argument("--service")
    p.add_argument("--days", type=int, default=7, help="how long the restored data stays readable")
    p.set_defaults(func=cmd_restore)


def demo_phase(paths, service: str = "payments-api", year: int = 2023) -> None:
    """The demo's last step: tier at today's clock, show that a cold year is reported, restore it."""
    from datetime import datetime

    from logpilot_dagster.lifecycle.catalog import cold_ranges
    from logpilot_dagster.storage.warehouse import connect

    start, end = datetime(year, 1, 1), datetime(year + 1, 1, 1)
    count = f"SELECT count(*) FROM {{}} WHERE service = '{service}' AND ts >= '{start}' AND ts < '{end}'"
    with connect(paths.db_path, read_only=True) as con:
        before = con.execute(count.format("logs")).fetchone()[0]
    print_tiering(run_tiering())
    with connect(paths.db_path, read_only=True) as con:
        cold = cold_ranges(con, service, start, end)
        readable = con.execute(count.format("logs_all")).fetchone()[0]
    print(f"   {service} {year}: {before:,} rows before tiering; logs_all reads {readable:,} now, "
          f"{len(cold)} months are in cold storage")
    report = run_restore(start.isoformat(), end.isoformat(), service)
    with connect(paths.db_path, read_only=True) as con:
        readable = con.execute(count.format("logs_all")).fetchone()[0]
    print(f"   logpilot restore --from {start:%Y-%m-%d} --to {end:%Y-%m-%d} --service {service}: "
          f"{report['objects_restored']} objects restored; logs_all reads {readable:,} rows")
