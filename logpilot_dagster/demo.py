"""``logpilot demo``: the README's main command on the embedded defaults, end to end."""

from __future__ import annotations

import argparse
import time

from logpilot_dagster.cli import cmd_sample, run_backfill, use_home


def cmd_demo(args: argparse.Namespace) -> int:
    paths = use_home(args.home)
    start = time.perf_counter()
    print(f"== 1/3 sample landing zone under {paths.landing_zone}")
    cmd_sample(argparse.Namespace(home=args.home, lines=args.lines, force=False))
    print("== 2/3 backfill, one Dagster run per year partition")
    summary = run_backfill(paths, [], progress=not args.quiet)
    from logpilot_dagster.backfill import backfill_t1
    from logpilot_dagster.warehouse import connect

    t1 = backfill_t1(paths)
    with connect(paths.db_path, read_only=True) as con:
        counts = dict(con.execute("SELECT 'logs', count(*) FROM logs UNION ALL SELECT 'templates', count(*) "
                                  "FROM templates UNION ALL SELECT 'quarantine', count(*) FROM quarantine").fetchall())
    print(f"   {sum(r['lines_read'] for r in summary):,} lines -> logs={counts['logs']:,} "
          f"templates={counts['templates']:,} quarantine={counts['quarantine']:,}; T1 = {t1}")
    print(f"== 3/3 done in {time.perf_counter() - start:.0f}s")
    print(f"   DuckDB:   {paths.db_path}   (tables: logs, templates, system_catalog, quarantine)")
    print(f"   Parquet:  {paths.parquet_dir}")
    print(f"   Chroma:   {paths.chroma_dir}")
    print(f"   UI:       logpilot --home {paths.home} dev   then open http://127.0.0.1:3000")
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="sample data, backfill, live catch-up and a few agent answers")
    p.add_argument("--lines", type=int, default=3_000_000, help="sample size (lines over all years)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)
