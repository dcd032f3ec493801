"""``logpilot broker | collect | produce | ingest``: subcommands the main CLI registers with ``register``.

Handlers import what they need when they run, so ``logpilot --help`` does not load the Kafka client or DuckDB."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

from logpilot_dagster.settings import LogPilotPaths


def _paths(args: argparse.Namespace) -> LogPilotPaths:
    return LogPilotPaths.from_env(getattr(args, "home", None)).ensure()


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def cmd_broker(args: argparse.Namespace) -> int:
    """Run the embedded broker in the foreground and announce its address to the other commands."""
    from logpilot_dagster.broker import BrokerSettings, announce_file, embedded_broker
    from logpilot_dagster.broker.embedded import announced_bootstrap
    from logpilot_dagster.stream.settings import buffer_dir

    paths = _paths(args)
    settings = BrokerSettings.from_env()
    running = announced_bootstrap(announce_file(paths.state_dir))
    if running:
        print(f"a broker already runs on {running} for this home", file=sys.stderr)
        return 1
    broker = embedded_broker(settings, buffer_dir(paths), memory=args.memory, port=args.port,
                             announce_to=paths.state_dir)
    stop = _stop_on_signals()
    topics = args.topic or [settings.topic]
    with broker:
        for topic in topics:
            broker.ensure_topic(topic)
        print(broker.bootstrap_servers, flush=True)
        kept = "in memory: it forgets its records when it stops" if args.memory else \
            f"durable, on SeaweedFS under {buffer_dir(paths)}"
        print(f"embedded broker on {broker.bootstrap_servers}, topics {', '.join(topics)} ({settings.partitions} "
              f"partitions, retention {settings.retention_ms} ms), log {kept}; Ctrl-C stops it",
              file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            if broker.process.poll() is not None:
                print("broker exited", file=sys.stderr)
                return 1
    return 0


def _source_and_path(spec: str) -> tuple[str, Path]:
    """``NAME=PATH`` or ``PATH`` (the source name is then the file name up to its first dot)."""
    name, sep, path = spec.partition("=")
    if sep and "/" not in name:
        return name, Path(path)
    return Path(spec).name.split(".")[0], Path(spec)


def cmd_collect(args: argparse.Namespace) -> int:
    from logpilot_dagster.broker import BrokerSettings, connect_broker
    from logpilot_dagster.ingest.registry import SchemaRegistry
    from logpilot_dagster.stream.collector import Collector
    from logpilot_dagster.stream.producer import LineProducer

    paths = _paths(args)
    broker = connect_broker(BrokerSettings.from_env(), paths.state_dir)
    files = dict(_source_and_path(spec) for spec in args.files)
    if not files and not args.stdin:
        print("nothing to collect: give files and/or --stdin", file=sys.stderr)
        return 2
    stop = _stop_on_signals()
    with LineProducer(broker, SchemaRegistry.load(paths)) as producer:
        collector = Collector(producer, files, paths.state_dir / f"{args.name}.json",
                              stdin=sys.stdin.buffer if args.stdin else None, stdin_source=args.source)
        try:
            sent = collector.run(stop, args.interval)
        finally:
            collector.close()
    print(f"collected {sent} lines", file=sys.stderr)
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    from logpilot_dagster.broker import BrokerSettings, connect_broker
    from logpilot_dagster.ingest.registry import SchemaRegistry
    from logpilot_dagster.stream.producer import LineProducer, produce_stream, read_line_chunks

    paths = _paths(args)
    broker = connect_broker(BrokerSettings.from_env(), paths.state_dir)
    name = args.source or ("stdin" if args.file == "-" else Path(args.file).name.split(".")[0])
    with LineProducer(broker, SchemaRegistry.load(paths)) as producer:
        if args.file == "-":
            sent = produce_stream(producer, name, read_line_chunks(sys.stdin.buffer))
        else:
            with open(args.file, "rb") as fh:
                sent = produce_stream(producer, name, read_line_chunks(fh))
    print(f"produced {sent} lines to {producer.topic} (key {name})")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from logpilot_dagster.stream.settings import LiveSettings
    from logpilot_dagster.stream.worker import run_ingestion

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = LiveSettings.from_env(_paths(args))
    if args.group:
        settings = dataclasses.replace(settings, group_id=args.group, group_mode=True)
    paths = settings.paths
    from logpilot_dagster.ingest.backfill import published_t1

    t1 = datetime.fromisoformat(args.t1) if args.t1 else published_t1(paths)
    stats = run_ingestion(settings, until_caught_up=args.until_caught_up, max_seconds=args.max_seconds, t1=t1)
    print(json.dumps(stats.as_dict()))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``broker``, ``collect``, ``produce`` and ``ingest`` to the main parser's subcommands."""
    p = subparsers.add_parser("broker", help="run the embedded Kafka-compatible broker (tansu) in the foreground")
    p.add_argument("--port", type=int, default=None, help="listen port (default: a free one)")
    p.add_argument("--topic", action="append", default=None,
                   help="a topic to create with the configured partitions and retention (repeatable: every topic "
                        "that producers such as Vector or Fluent Bit write to); default: LOGPILOT_KAFKA_TOPIC")
    p.add_argument("--memory", action="store_true",
                   help="keep the log in memory only (tests, benchmarks); default: durable on SeaweedFS")
    p.set_defaults(func=cmd_broker)

    p = subparsers.add_parser("collect", help="tail files and/or stdin into the raw topic")
    p.add_argument("files", nargs="*", help="PATH or NAME=PATH (NAME: the source name, the record key)")
    p.add_argument("--stdin", action="store_true", help="also read lines from stdin")
    p.add_argument("--source", default="stdin", help="source name for stdin lines")
    p.add_argument("--interval", type=float, default=0.2, help="seconds between polls when idle")
    p.add_argument("--name", default="collector",
                   help="names the position file under the state dir (one per collector running at once)")
    p.set_defaults(func=cmd_collect)

    p = subparsers.add_parser("produce", help="send a file (or - for stdin) to the raw topic once")
    p.add_argument("file", help="a log file, or - for stdin")
    p.add_argument("--source", default=None, help="source name (default: the file name up to its first dot)")
    p.set_defaults(func=cmd_produce)

    p = subparsers.add_parser("ingest", help="consume the raw topic into DuckDB (exactly-once)")
    p.add_argument("--until-caught-up", action="store_true", help="exit 0 once the lag is 0")
    p.add_argument("--group", metavar="NAME", default=None,
                   help="run as one member of consumer group NAME: partitions from the group, positions from the "
                        "warehouse (also LOGPILOT_INGEST_GROUP_MODE=1 with LOGPILOT_INGEST_GROUP)")
    p.add_argument("--max-seconds", type=float, default=None)
    p.add_argument("--t1", default=None, help="skip records at or before this ISO time (default: the T1 the backfill published)")
    p.set_defaults(func=cmd_ingest)
