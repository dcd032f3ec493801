"""``logpilot demo``: the README's main command on the embedded defaults, end to end."""

from __future__ import annotations

import argparse
import time

from logpilot_dagster.cli import cmd_sample, run_backfill, use_home
from logpilot_dagster.settings import LogPilotPaths

QUESTIONS = (
    "How many ERROR lines did payments-api log in 2023?",
    "Errors per department in 2025",
    "Who owns edge-gateway and how critical is it?",
    "What should I do about payment gateway timeouts?",
    "Show me lines like deadlock detected from inventory-db",
)


def ask_questions(paths: LogPilotPaths) -> None:
    from logpilot_dagster.agent import LogPilotClient

    client = LogPilotClient(paths.db_path, paths.chroma_dir, paths.runbooks_dir)
    for question in QUESTIONS:
        answer = client.ask(question)
        print(f"\n   Q: {question}\n   [{answer.intent}, {answer.latency_ms:.0f} ms]")
        print("   " + "\n   ".join(answer.answer.splitlines()[:8]))
        if answer.sql:
            print(f"   SQL: {answer.sql}")
        if answer.sources:
            print(f"   sources: {', '.join(answer.sources[:4])}")


def cmd_demo(args: argparse.Namespace) -> int:
    paths = use_home(args.home)
    start = time.perf_counter()
    print(f"== 1/4 sample landing zone under {paths.landing_zone}")
    cmd_sample(argparse.Namespace(home=args.home, lines=args.lines, force=False))
    print("== 2/4 backfill, one Dagster run per year partition")
    summary = run_backfill(paths, [], progress=not args.quiet)
    from logpilot_dagster.backfill import backfill_t1
    from logpilot_dagster.warehouse import connect

    t1 = backfill_t1(paths)
    with connect(paths.db_path, read_only=True) as con:
        counts = dict(con.execute("SELECT 'logs', count(*) FROM logs UNION ALL SELECT 'templates', count(*) "
                                  "FROM templates UNION ALL SELECT 'quarantine', count(*) FROM quarantine").fetchall())
    print(f"   {sum(r['lines_read'] for r in summary):,} lines -> logs={counts['logs']:,} "
          f"templates={counts['templates']:,} quarantine={counts['quarantine']:,}; T1 = {t1}")
    print("== 4/4 the query agent (offline planner; set LOGPILOT_LLM_BASE_URL/MODEL to draft with an LLM)")
    ask_questions(paths)
    print(f"\n== done in {time.perf_counter() - start:.0f}s")
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
