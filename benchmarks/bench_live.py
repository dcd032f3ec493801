"""Live ingestion benchmark on the embedded broker (tansu).

1. Catch-up: produce N sample lines (8 services, real header formats, PII) to a fresh topic, then, in each of
   ``--repeats`` rounds, drain it twice with a plain kafka-python consumer (``plain_drain.py``, in a process
   of its own) and let the worker ingest it into an empty DuckDB with ``until_caught_up``. The drains use the
   worker's client settings, once with its poll size (up to a batch) and once with kafka-python's default (500
   records per poll, faster here: fewer record objects alive at a time make garbage collections cheaper).
   Reports the median rates and worker / drain; the target (>= 0.8) is against the faster drain.
2. Real time: with the worker running, produce at a fixed rate and measure produce -> visible-in-``logs``
   latency (p50/p99): from each send until the DuckDB transaction holding its row committed.

Both run once per ``--storage``: the embedded broker's log in memory, and durable (tansu's S3 engine on a
SeaweedFS store, the default of ``logpilot broker``); ``both`` (the default) prints them one after the other.

    python benchmarks/bench_live.py [--records 1000000] [--rate 1000] [--seconds 20] [--batch-size 150000]
                                    [--repeats 3] [--storage memory|durable|both]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import psutil

from logpilot_dagster.broker import BrokerSettings, EmbeddedBroker, SeaweedS3
from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.ingest.sample_data import LAYOUTS, WEIGHTS, render_line, source_specs
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.ingest.sources import write_sources
from logpilot_dagster.stream import IngestionWorker, LineProducer, LiveSettings
from logpilot_dagster.stream.worker import FETCH_MAX_WAIT_MS, run_ingestion

SERVICES = list(LAYOUTS)
KAFKA_DEFAULT_POLL_RECORDS = 500  # kafka-python's max_poll_records


def sample_lines(n: int, start: datetime, seed: int = 1) -> dict[str, list[bytes]]:
    """``n`` lines spread over the services by their weights, timestamps ascending from ``start``."""
    r = random.Random(seed)
    by_service: dict[str, list[bytes]] = {s: [] for s in SERVICES}
    services = r.choices(SERVICES, weights=[WEIGHTS[s] for s in SERVICES], k=n)
    for i, service in enumerate(services):
        by_service[service].append(render_line(service, start + timedelta(milliseconds=i * 10), r)[1].encode())
    return by_service


def produce(broker, paths: LogPilotPaths, by_service: dict[str, list[bytes]]) -> float:
    t0 = time.perf_counter()
    with LineProducer(broker, SchemaRegistry.load(paths)) as producer:
        for service, lines in by_service.items():
            for k in range(0, len(lines), 20_000):
                producer.send(service, lines[k:k + 20_000])
    return time.perf_counter() - t0


def drain(broker, settings: LiveSettings, expected: int, poll_records: int) -> tuple[float, float]:
    """(seconds, CPU seconds) for ``plain_drain.py`` (the worker's client settings, no group, ``poll_records``
    per poll) to read every record."""
    config = {**broker.client_config(), "enable_auto_commit": False, "auto_offset_reset": "earliest",
              "max_poll_records": poll_records, "fetch_max_bytes": 64 * 1024 * 1024,
              "max_partition_fetch_bytes": 16 * 1024 * 1024, "fetch_max_wait_ms": FETCH_MAX_WAIT_MS}
    script = Path(__file__).with_name("plain_drain.py")
    out = subprocess.run([sys.executable, str(script), json.dumps(config), settings.broker.topic, str(expected)],
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    return result["seconds"], result["cpu_s"]


def fresh_settings(root: Path, name: str, settings: LiveSettings) -> LiveSettings:
    """The same worker settings on an empty LOGPILOT_HOME (sample sources, no data) and a consumer group of its
    own (a group's committed offsets would otherwise be the start position)."""
    paths = LogPilotPaths.from_env(root / name).ensure()
    write_sources(paths.sources_file, source_specs())
    return replace(settings, paths=paths, group_id=f"{settings.group_id}-{name}")


def catch_up(broker, settings: LiveSettings, records: int, repeats: int) -> dict:
    """Produce once, then alternate ``repeats`` plain drains with ``repeats`` worker runs (each into an empty
    home), so that drift on the machine touches both sides alike; rates are medians."""
    start = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=2)
    t0 = time.perf_counter()
    lines = sample_lines(records, start)
    gen_s = time.perf_counter() - t0
    produce_s = produce(broker, settings.paths, lines)
    del lines  # not on the worker's heap
    drains, default_drains, workers, drain_cpu, worker_cpu = [], [], [], [], []
    for i in range(repeats):
        for poll_records, measured in ((settings.batch_size, drains), (KAFKA_DEFAULT_POLL_RECORDS, default_drains)):
            seconds, cpu_s = drain(broker, settings, records, poll_records)
            measured.append(records / seconds)
            if poll_records == KAFKA_DEFAULT_POLL_RECORDS:
                drain_cpu.append(cpu_s)
        run_settings = fresh_settings(settings.paths.home.parent, f"run{i}", settings)
        before = cpu_seconds(broker)
        stats = run_ingestion(run_settings, until_caught_up=True, broker=broker, report=lambda msg: None)
        worker_cpu.append([b - a for a, b in zip(before, cpu_seconds(broker))])
        workers.append(stats.consumed / stats.elapsed_s)
        assert stats.consumed == records, stats.summary()
    with duckdb.connect(str(run_settings.paths.db_path), read_only=True) as con:
        rows, quarantined = con.execute("SELECT (SELECT count(*) FROM logs), (SELECT count(*) FROM quarantine)").fetchone()
    return {"records": records, "generate_s": gen_s, "produce_rate": records / produce_s, "drains": drains,
            "default_drains": default_drains, "workers": workers, "rows": rows, "quarantined": quarantined,
            "drain_cpu": drain_cpu, "worker_cpu": worker_cpu, "settings": run_settings}


def rates(label: str, values: list[float]) -> str:
    rounds = ", ".join(f"{v:.0f}" for v in values)
    return f"  {label}: median {statistics.median(values):.0f} records/s (rounds: {rounds})"


def ratios(workers: list[float], drains: list[float]) -> str:
    """worker / drain of the medians, and per round."""
    per_round = ", ".join(f"{w / d:.2f}" for w, d in zip(workers, drains))
    return f"{statistics.median(workers) / statistics.median(drains):.2f} (per round: {per_round})"


def cpu_seconds(broker) -> list[float]:
    """CPU seconds so far of [this process, its finished children (the worker's stages), the broker (tansu and
    its SeaweedFS store, if any)]."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    pids = [broker.process.pid] + ([broker.store.process.pid] if broker.store is not None else [])
    served = sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)
    return [own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime, served]


def produce_at_rate(bootstrap: str, topic: str, rate: int, seconds: float, out: multiprocessing.Queue) -> None:
    """In its own process: send ``rate`` lines/s; hands back {(partition, offset): send time}."""
    from kafka import KafkaProducer

    sent: dict[tuple[int, int], float] = {}
    r = random.Random(2)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    t0 = time.perf_counter()
    for i in range(int(rate * seconds)):
        if (pause := t0 + i / rate - time.perf_counter()) > 0:
            time.sleep(pause)
        service = SERVICES[i % len(SERVICES)]
        now = datetime.now(timezone.utc)
        meta = producer.send(topic, key=service.encode(), value=render_line(service, now, r)[1].encode(),
                             timestamp_ms=int(now.timestamp() * 1000))
        meta.add_callback(lambda md, t=time.time(): sent.__setitem__((md.partition, md.offset), t))
    producer.flush()
    producer.close()
    out.put(sent)


def real_time(broker, settings: LiveSettings, rate: int, seconds: float) -> dict:
    """Produce ``rate`` lines/s for ``seconds`` (from another process) while the worker runs; latency from each
    send until the DuckDB transaction holding its row committed (the worker's ``on_commit`` hook)."""
    commits: list = []
    worker = IngestionWorker(settings, broker=broker, report=lambda msg: None, on_commit=commits.append)
    with duckdb.connect(str(settings.paths.db_path), read_only=True) as con:
        start_offsets = dict(con.execute('SELECT "partition", next_offset FROM stream_offsets').fetchall())
    thread = threading.Thread(target=worker.run)
    thread.start()
    n = int(rate * seconds)
    out = multiprocessing.get_context("spawn").Queue()
    producer = multiprocessing.get_context("spawn").Process(
        target=produce_at_rate, args=(broker.bootstrap_servers, settings.broker.topic, rate, seconds, out))
    producer.start()
    sent = out.get()
    producer.join()
    deadline = time.perf_counter() + 30
    while sum(w.consumed for w in commits) < n and time.perf_counter() < deadline:
        time.sleep(0.05)
    worker.request_stop()
    thread.join()
    visible, high = {}, dict(start_offsets)
    for w in commits:
        for partition, next_offset in w.next_offsets.items():
            for offset in range(high.get(partition, 0), next_offset):
                visible[(partition, offset)] = w.committed_at
            high[partition] = next_offset
    latencies = sorted(visible[k] - t for k, t in sent.items() if k in visible)
    return {"lines": n, "seen": len(latencies), "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))], "mode": worker.stats.mode,
            "batches": len(commits)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--batch-size", type=int, default=LiveSettings.batch_size,
                        help="the worker's records per DuckDB transaction")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of drain then worker catch-up")
    parser.add_argument("--storage", choices=("memory", "durable", "both"), default="both",
                        help="the embedded broker's log: in memory, on SeaweedFS, or one run of each")
    args = parser.parse_args()
    for storage in ("memory", "durable") if args.storage == "both" else (args.storage,):
        print(f"== broker log: {storage}")
        bench(args, storage)


def bench(args: argparse.Namespace, storage: str) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        paths = LogPilotPaths.from_env(Path(tmp) / "producer").ensure()
        write_sources(paths.sources_file, source_specs())
        broker_settings = BrokerSettings(topic="bench.raw", partitions=args.partitions)
        settings = LiveSettings(paths=paths, broker=broker_settings, batch_size=args.batch_size)
        store = SeaweedS3(Path(tmp) / "seaweedfs") if storage == "durable" else None
        with EmbeddedBroker(broker_settings, store=store) as broker:
            c = catch_up(broker, settings, args.records, args.repeats)
            print(f"catch-up: {c['records']} records ({args.partitions} partitions), generated in "
                  f"{c['generate_s']:.1f}s, produced at {c['produce_rate']:.0f}/s; {args.repeats} rounds of drain "
                  "then worker")
            print(rates(f"plain drain, worker's client settings ({settings.batch_size} per poll)", c["drains"]))
            print(rates(f"plain drain, kafka-python defaults ({KAFKA_DEFAULT_POLL_RECORDS} per poll)",
                        c["default_drains"]))
            print(rates("worker (into DuckDB)", c["workers"]) + f"; last: {c['rows']} rows, {c['quarantined']} "
                  "quarantined")
            faster = max((c["drains"], c["default_drains"]), key=statistics.median)
            print(f"  worker / faster drain = {ratios(c['workers'], faster)} (target >= 0.8)")
            print(f"  worker / drain with the worker's settings = {ratios(c['workers'], c['drains'])}")
            own, stages, tansu = (statistics.median(x) for x in zip(*c["worker_cpu"]))
            print(f"  CPU seconds (medians, {os.cpu_count()} cores): worker consumer process {own:.1f}, worker stage "
                  f"processes {stages:.1f}, broker {tansu:.1f}; plain drain with kafka-python defaults "
                  f"{statistics.median(c['drain_cpu']):.1f}")
            settings = c["settings"]
            rt = real_time(broker, settings, args.rate, args.seconds)
            print(f"real-time at {args.rate} lines/s for {args.seconds:.0f}s: {rt['seen']}/{rt['lines']} visible, "
                  f"produce -> visible p50 {rt['p50_ms']:.0f} ms, p99 {rt['p99_ms']:.0f} ms ({rt['batches']} transactions, "
                  f"mode {rt['mode']})")


if __name__ == "__main__":
    main()
