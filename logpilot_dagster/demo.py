"""``logpilot demo``: the README's main command on the embedded defaults, end to end (``--profile lake``: the
same on DuckLake, its Postgres catalog and S3 store started under ``LOGPILOT_HOME/lake``)."""

from __future__ import annotations

import argparse
import os
import random
import time
from datetime import datetime, timedelta

from logpilot_dagster.cli import cmd_sample, run_backfill, use_home
from logpilot_dagster.settings import LogPilotPaths

QUESTIONS = (
    "How many ERROR lines did payments-api log in 2023?",
    "Errors per department in 2025",
    "Who owns edge-gateway and how critical is it?",
    "What should I do about payment gateway timeouts?",
    "Show me lines like deadlock detected from inventory-db",
)


def live_phase(paths: LogPilotPaths, t1: datetime, per_service: int = 1_000) -> None:
    """Start the embedded broker on its durable buffer (tansu on SeaweedFS under ``LOGPILOT_HOME/buffer``),
    produce lines around T1 (the old ones must be skipped, the new ones land), and run the ``live_ingestion``
    Dagster job until it has caught up."""
    import dagster as dg

    from logpilot_dagster.broker import BrokerUnavailable, connect_broker, embedded_broker
    from logpilot_dagster.defs.live import LiveIngestion, live_ingestion
    from logpilot_dagster.defs.resources import default_resources
    from logpilot_dagster.ingest.registry import SchemaRegistry
    from logpilot_dagster.ingest.sample_data import LAYOUTS, render_line
    from logpilot_dagster.stream.producer import LineProducer
    from logpilot_dagster.stream.settings import LiveSettings, buffer_dir

    settings = LiveSettings.from_env(paths)
    r = random.Random(2026)
    try:  # a broker already running for this home (`logpilot broker`) holds the buffer: use it
        running = connect_broker(settings.broker, paths.state_dir)
    except BrokerUnavailable:
        running = embedded_broker(settings.broker, buffer_dir(paths), announce_to=paths.state_dir)
    with running as broker:
        broker.ensure_topic()
        with LineProducer(broker, SchemaRegistry.load(paths)) as producer:
            for service in LAYOUTS:
                old = [render_line(service, t1 - timedelta(minutes=i), r)[1] for i in range(20)]
                new = [render_line(service, t1 + timedelta(seconds=3 * i), r)[1] for i in range(1, per_service + 1)]
                producer.send(service, [line.encode() for line in old + new])
            novel = LAYOUTS["payments-api"].render(t1 + timedelta(minutes=7), "ERROR", "ledger",
                                                   "Ledger reconciliation drift detected for batch 8812", r)
            producer.send("payments-api", [novel.encode()])
        print(f"   produced {len(LAYOUTS) * (per_service + 20):,} lines to {broker.bootstrap_servers} "
              f"({len(LAYOUTS) * 20} at or before T1), buffered durably under {buffer_dir(paths)}")
        resources = {**default_resources(), "live": LiveIngestion(bootstrap_servers=broker.bootstrap_servers)}
        result = live_ingestion.execute_in_process(
            resources=resources, instance=dg.DagsterInstance.get(),
            run_config={"ops": {"consume_raw_topic": {"config": {"t1": t1.isoformat(), "until_caught_up": True}}},
                        "loggers": {"console": {"config": {"log_level": "WARNING"}}}})
    stats = result.output_for_node("consume_raw_topic")
    print(f"   live_ingestion: consumed {stats['consumed']:,}, inserted {stats['inserted']:,}, skipped at/before T1 "
          f"{stats['skipped_before_t1']:,}, quarantined {stats['quarantined']:,}, lag {stats['lag']}, "
          f"mode {stats['mode']}")


def analytics_phase() -> None:
    """Count the live rows into the template series and run the detectors (the UI shows the checks)."""
    import dagster as dg

    from logpilot_dagster.defs.analytics import template_series
    from logpilot_dagster.defs.resources import default_resources

    result = dg.materialize([template_series], resources=default_resources(), instance=dg.DagsterInstance.get(),
                            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
    for check in result.get_asset_check_evaluations():
        events = check.metadata["events"].value
        print(f"   {check.check_name}: {'passed' if check.passed else 'WARN'}; {len(events)} event(s)")
        for event in events[:3]:
            print(f"     {event['kind']} {event['service']} {event['template_id']} [{event['severity']}] "
                  f"{event['detail']}" + (f" runbook {event['runbook']}" if event.get("runbook") else ""))


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
    if args.profile == "lake":
        from logpilot_dagster.lake_local import local_lake

        with local_lake(paths) as env:
            print(f"== lake profile: catalog {env['LOGPILOT_LAKE_CATALOG']}, data {env['LOGPILOT_LAKE_DATA']} "
                  f"on {env['LOGPILOT_LAKE_S3_ENDPOINT_URL']}")
            return _demo(args, paths)
    return _demo(args, paths)


def _demo(args: argparse.Namespace, paths: LogPilotPaths) -> int:
    start = time.perf_counter()
    print(f"== 1/5 sample landing zone under {paths.landing_zone}")
    cmd_sample(argparse.Namespace(home=args.home, lines=args.lines, force=False))
    print("== 2/5 backfill, one Dagster run per year partition")
    summary = run_backfill(paths, [], progress=not args.quiet)
    from logpilot_dagster.ingest.backfill import backfill_t1
    from logpilot_dagster.storage.warehouse import connect

    t1 = backfill_t1(paths)
    with connect(paths.db_path, read_only=True) as con:
        counts = dict(con.execute("SELECT 'logs', count(*) FROM logs UNION ALL SELECT 'templates', count(*) "
                                  "FROM templates UNION ALL SELECT 'quarantine', count(*) FROM quarantine").fetchall())
    print(f"   {sum(r['lines_read'] for r in summary):,} lines -> logs={counts['logs']:,} "
          f"templates={counts['templates']:,} quarantine={counts['quarantine']:,}; T1 = {t1}")
    print("== 3/5 live: embedded Kafka-compatible broker (tansu) -> live_ingestion job, catch-up from T1")
    live_phase(paths, t1)
    print("   template analytics: new templates and anomalies since T1")
    analytics_phase()
    print("== 4/5 the query agent (offline planner; set LOGPILOT_LLM_BASE_URL/MODEL to draft with an LLM)")
    ask_questions(paths)
    print("== 5/5 lifecycle: the tiering job (hot -> warm -> cold at today's clock), then restore one cold year")
    from logpilot_dagster.lifecycle_cli import demo_phase

    demo_phase(paths)
    print(f"\n== done in {time.perf_counter() - start:.0f}s")
    from logpilot_dagster.storage import profile

    where = os.environ["LOGPILOT_LAKE_DATA"] + " (DuckLake)" if profile.is_lake() else paths.db_path
    print(f"   DuckDB:   {where}   (tables: logs, templates, system_catalog, quarantine)")
    print(f"   Parquet:  {paths.parquet_dir}")
    print(f"   Tiers:    {paths.home / 'tiers'}   (warm/, cold/, restored/; query logs_all for every readable tier)")
    print(f"   Chroma:   {paths.chroma_dir}")
    print(f"   UI:       logpilot --home {paths.home} dev   then open http://127.0.0.1:3000")
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="sample data, backfill, live catch-up, a few agent answers and tiering")
    p.add_argument("--lines", type=int, default=3_000_000, help="sample size (lines over all years)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--profile", choices=("embedded", "lake"), default="embedded",
                   help="storage profile (lake: local Postgres + SeaweedFS S3 under LOGPILOT_HOME/lake)")
    p.set_defaults(func=cmd_demo)
