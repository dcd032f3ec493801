"""Live ingestion benchmark on the embedded broker (tansu), for each consumer client (kafka-python, confluent).

1. Catch-up: produce N sample lines (8 services, real header formats, PII) to a fresh topic, then, in each of
   ``--repeats`` rounds, drain it with plain consumers (``plain_drain.py``, each in a process of its own) and
   let the worker ingest it into an empty DuckDB with ``until_caught_up``, once per client
   (``LOGPILOT_KAFKA_CLIENT``). The kafka-python drains use the worker's client settings, once with its poll size
   (up to a batch) and once with kafka-python's default (500 records per poll, faster here: fewer record objects
   alive at a time make garbage collections cheaper); the confluent-kafka drain takes ``CONSUME_MAX`` records per
   ``consume`` call, as the worker does. Reports median rates, worker / drain of the same client and of
   kafka-python's faster drain (the target: >= 0.8), and CPU per record of each process: the worker's total
   against its client's drain (the target: <= 2x).
2. Real time, per client: with the worker running, produce at a fixed rate and measure produce ->
   visible-in-``logs`` latency (p50/p99): from each send until the DuckDB transaction holding its row committed.

Both run once per ``--storage``: the embedded broker's log in memory, and durable (tansu's S3 engine on a
SeaweedFS store, the default of ``logpilot broker``); ``both`` (the default) prints them one after the other.

    python benchmarks/bench_live.py [--records 1000000] [--rate 1000] [--seconds 20] [--batch-size 150000]
                                    [--repeats 3] [--storage memory|durable|both]
                                    [--clients kafka-python,confluent]
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
from logpilot_dagster.broker.confluent_consumer import CONSUME_MAX, PROBE_GROUP, librdkafka_config
from logpilot_dagster.broker.settings import CLIENTS, CONFLUENT, KAFKA_PYTHON
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


def drain(broker, settings: LiveSettings, expected: int, client: str, poll_records: int) -> tuple[float, float]:
    """(seconds, CPU seconds) for ``plain_drain.py`` (the worker's client settings, no group, ``poll_records``
    per poll) to read every record with ``client``."""
    config = {**broker.client_config(), "enable_auto_commit": False, "auto_offset_reset": "earliest",
              "max_poll_records": poll_records, "fetch_max_bytes": 64 * 1024 * 1024,
              "max_partition_fetch_bytes": 16 * 1024 * 1024, "fetch_max_wait_ms": FETCH_MAX_WAIT_MS}
    if client == CONFLUENT:
        config = {"group.id": PROBE_GROUP, **librdkafka_config(config), "enable.auto.commit": False}
    script = Path(__file__).with_name("plain_drain.py")
    out = subprocess.run([sys.executable, str(script), client, json.dumps(config), settings.broker.topic,
                          str(expected), str(poll_records)], check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    return result["seconds"], result["cpu_s"]


def fresh_settings(root: Path, name: str, settings: LiveSettings, client: str) -> LiveSettings:
    """The same worker settings with ``client`` on an empty LOGPILOT_HOME (sample sources, no data) and a
    consumer group of its own (a group's committed offsets would otherwise be the start position)."""
    paths = LogPilotPaths.from_env(root / name).ensure()
    write_sources(paths.sources_file, source_specs())
    return replace(settings, paths=paths, group_id=f"{settings.group_id}-{name}",
                   broker=replace(settings.broker, client=client))


#: The plain drains of each round: (label, client, records per poll; None: the worker's batch size).
DRAINS = (("kafka-python, a batch per poll", KAFKA_PYTHON, None),
          (f"kafka-python defaults ({KAFKA_DEFAULT_POLL_RECORDS} per poll)", KAFKA_PYTHON, KAFKA_DEFAULT_POLL_RECORDS),
          (f"confluent-kafka, consume({CONSUME_MAX})", CONFLUENT, CONSUME_MAX))


def catch_up(broker, settings: LiveSettings, records: int, repeats: int, clients: tuple[str, ...]) -> dict:
    """Produce once, then alternate ``repeats`` rounds of plain drains and worker runs (one per client, each into
    an empty home), so that drift on the machine touches every side alike; rates are medians."""
    start = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=2)
    t0 = time.perf_counter()
    lines = sample_lines(records, start)
    gen_s = time.perf_counter() - t0
    produce_s = produce(broker, settings.paths, lines)
    del lines  # not on the worker's heap
    drains = {label: {"rates": [], "cpu": []} for label, client, _ in DRAINS if client in clients}
    workers = {client: {"rates": [], "cpu": []} for client in clients}
    for i in range(repeats):
        for label, client, poll_records in DRAINS:
            if client in clients:
                seconds, cpu_s = drain(broker, settings, records, client, poll_records or settings.batch_size)
                drains[label]["rates"].append(records / seconds)
                drains[label]["cpu"].append(cpu_s)
        for client in clients:
            run_settings = fresh_settings(settings.paths.home.parent, f"run{i}-{client}", settings, client)
            before = cpu_seconds(broker)
            stats = run_ingestion(run_settings, until_caught_up=True, broker=broker, report=lambda msg: None)
            workers[client]["cpu"].append([b - a for a, b in zip(before, cpu_seconds(broker))])
            workers[client]["rates"].append(stats.consumed / stats.elapsed_s)
            workers[client]["settings"] = run_settings
            assert stats.consumed == records, stats.summary()
    with duckdb.connect(str(run_settings.paths.db_path), read_only=True) as con:
        rows, quarantined = con.execute(
            "SELECT (SELECT count(*) FROM logs), (SELECT count(*) FROM quarantine)").fetchone()
    return {"records": records, "generate_s": gen_s, "produce_rate": records / produce_s, "drains": drains,
            "workers": workers, "rows": rows, "quarantined": quarantined}


def report_catch_up(c: dict) -> None:
    """Rates, ratios and CPU per record of each client's drains and worker."""
    n, med = c["records"], statistics.median
    drains, workers = c["drains"], c["workers"]
    for label, d in drains.items():
        print(rates(f"plain drain, {label}", d["rates"]) + f"; CPU {1e6 * med(d['cpu']) / n:.2f} us/record")
    kp = [d for label, d in drains.items() if label.startswith(KAFKA_PYTHON)]
    kp_faster = max(kp, key=lambda d: med(d["rates"])) if kp else None
    for client, w in workers.items():
        own, stages, served = (med(x) for x in zip(*w["cpu"]))
        print(rates(f"worker with {client} (into DuckDB)", w["rates"]))
        own_drains = [d for label, d in drains.items() if label.startswith(client)]
        faster = max(own_drains, key=lambda d: med(d["rates"])) if own_drains else None
        if faster is not None:
            print(f"    worker / faster {client} drain = {ratios(w['rates'], faster['rates'])}")
        if kp_faster is not None and client != KAFKA_PYTHON:
            print(f"    worker / faster kafka-python drain = {ratios(w['rates'], kp_faster['rates'])} (target >= 0.8)")
        elif faster is not None:
            print("    (target >= 0.8 of the faster kafka-python drain)")
        per = lambda seconds: 1e6 * seconds / n  # noqa: E731
        line = (f"    CPU per record: consumer process {per(own):.2f} us, transform + write process "
                f"{per(stages):.2f} us, worker total {per(own + stages):.2f} us, broker {per(served):.2f} us")
        for label, d in ((f"its {client} drain", faster), ("kafka-python's faster drain", kp_faster)):
            if d is not None and (label.startswith("its") or client != KAFKA_PYTHON):
                line += f"; total / {label} = {(own + stages) / med(d['cpu']):.2f}"
        print(line + " (target <= 2)")
    print(f"  last run: {c['rows']} rows, {c['quarantined']} quarantined")


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
    parser.add_argument("--repeats", type=int, default=3, help="rounds of drains then worker catch-ups")
    parser.add_argument("--storage", choices=("memory", "durable", "both"), default="both",
                        help="the embedded broker's log: in memory, on SeaweedFS, or one run of each")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="consumer clients to measure")
    args = parser.parse_args()
    args.clients = tuple(c for c in CLIENTS if c in args.clients.split(","))
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
            c = catch_up(broker, settings, args.records, args.repeats, args.clients)
            print(f"catch-up: {c['records']} records ({args.partitions} partitions), generated in "
                  f"{c['generate_s']:.1f}s, produced at {c['produce_rate']:.0f}/s; {args.repeats} rounds of drains "
                  f"then workers; {os.cpu_count()} cores, load average at the end {os.getloadavg()[0]:.1f}")
            report_catch_up(c)
            for client in args.clients:
                rt = real_time(broker, c["workers"][client]["settings"], args.rate, args.seconds)
                print(f"real-time with {client} at {args.rate} lines/s for {args.seconds:.0f}s: {rt['seen']}/"
                      f"{rt['lines']} visible, produce -> visible p50 {rt['p50_ms']:.0f} ms, p99 {rt['p99_ms']:.0f} "
                      f"ms ({rt['batches']} transactions, mode {rt['mode']})")


if __name__ == "__main__":
    main()
