"""``logpilot diff``: what changed between two periods, from the template series."""

from __future__ import annotations

import argparse

import duckdb


def cmd_diff(args: argparse.Namespace) -> int:
    from logpilot_dagster.analytics.changes import what_changed
    from logpilot_dagster.settings import LogPilotPaths
    from logpilot_dagster.storage.warehouse import connect

    paths = LogPilotPaths.from_env(args.home)
    try:
        with connect(paths.db_path, read_only=True) as con:
            changes = what_changed(con, args.from_, args.to, service=args.service, top=args.top)
    except duckdb.CatalogException:
        print("no template series yet: run `logpilot backfill` or the template_analytics job first")
        return 1
    except ValueError as exc:
        print(exc)
        return 2
    print(changes.render())
    return 0


def register(sub) -> None:
    p = sub.add_parser("diff", help="templates new in B, gone since A, and the biggest rate shifts")
    p.add_argument("--from", dest="from_", required=True, help="period A: 2024, 2024-03, 2024-03-04, A..B")
    p.add_argument("--to", required=True, help="period B, same spellings")
    p.add_argument("--service")
    p.add_argument("--top", type=int, default=10)
    p.set_defaults(func=cmd_diff)
