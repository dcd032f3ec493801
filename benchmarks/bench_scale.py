"""Flat cost as history grows: year loads and live batches on a warehouse of many years.

1. Year loads (the configuration users get: ``logs`` without a key). ``--years`` years of ``--rows-per-year``
   generated rows each (DuckDB writes them as the staged zstd Parquet of the year: 8 services, 4 files each, the
   columns and id shape of the real ``logs``, 400 templates in the year's shard) go through the real load step,
   ``ingest.backfill.load_year``, one year per fresh process (as one Dagster run per year). Reports seconds per
   million rows and the process's peak RSS per year; target: the last year within 1.2x of the first, RSS flat.
2. Live writer: the real ``stream.sink.write_batch`` through the stage's ``HeldConnection``, batches of
   ``--batch`` records of the year in progress, on an empty warehouse and on the one of step 1. Reports µs per
   record for the first batch (it looks up the partitions' highest stored offset in ``logs`` once), the steady
   batches, and a replayed batch (the same records again: the restricted anti-join, nothing inserted).
3. Baseline, labelled ``old PRIMARY KEY``: ``--pk-years`` of the same years loaded into ``logs`` with the former
   ``event_id VARCHAR PRIMARY KEY`` by the former statement for a new year (``INSERT ... ORDER BY event_id``),
   and the same live batches written into it; next to it the same statement without the key, for the ratio.

    python benchmarks/bench_scale.py [--rows-per-year 20000000] [--years 5] [--pk-years 2] [--batch 150000]
                                     [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import duckdb
import pyarrow as pa

FIRST_YEAR = 2021
LIVE_YEAR = 2026
SERVICES = ("payments-api", "edge-gateway", "inventory-db", "auth-service", "search-api", "billing-worker",
            "notification-svc", "orders-api")
FILES_PER_SERVICE = 4
TEMPLATES_PER_SERVICE = 50
TOPIC = "logpilot.raw"
PARTITIONS = 3


def _files(year: int) -> list[str]:
    return [f"{s}/{year}/{s}-{year}-{k}.log" for s in SERVICES for k in range(FILES_PER_SERVICE)]


def _template(service: str, n: int) -> tuple[str, str]:
    return f"bench-{service}-{n:02d}", f"{service} step {n} user <EMAIL_REDACTED> took <*> ms on shard <*>"


def generate_year(home: Path, year: int, rows: int) -> None:
    """The year's staged Parquet and shard, as ``stage_year`` leaves them (rows in file, offset order)."""
    from logpilot_dagster.ingest.backfill import year_dirs
    from logpilot_dagster.ingest.transform import source_key
    from logpilot_dagster.settings import LogPilotPaths

    paths = LogPilotPaths.from_env(home)
    logs_dir, quarantine_dir, shard_path = year_dirs(paths, year)
    logs_dir.mkdir(parents=True, exist_ok=True)
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    shard_path.parent.mkdir(parents=True, exist_ok=True)
    files = _files(year)
    per_file = -(-rows // len(files))
    sources = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    prefixes = "[" + ", ".join(f"'{source_key(f)}'" for f in files) + "]"
    services = "[" + ", ".join(f"'{f.split('/')[0]}'" for f in files) + "]"
    with duckdb.connect() as con:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"""
            COPY (
                SELECT {prefixes}[f + 1] || ':' || off AS event_id,
                       TIMESTAMP '{year}-01-01' + to_microseconds(CAST(k * (31536000e6 / {per_file}) AS BIGINT)
                                                                 + f * 1000) AS ts,
                       {services}[f + 1] AS service,
                       ['INFO', 'INFO', 'INFO', 'WARN', 'ERROR', 'DEBUG'][1 + (i * 31) % 6] AS level,
                       'bench-' || {services}[f + 1] || '-' || lpad(((i * 7919) % {TEMPLATES_PER_SERVICE})::VARCHAR,
                                                               2, '0') AS template_id,
                       {services}[f + 1] || ' step ' || ((i * 7919) % {TEMPLATES_PER_SERVICE})
                           || ' user <EMAIL_REDACTED> took ' || (i % 997) || ' ms on shard ' || (i % 61) AS message,
                       [(i % 997)::VARCHAR, (i % 61)::VARCHAR] AS params, {sources}[f + 1] AS source,
                       off AS source_offset, {year}::INTEGER AS year, 'worker-' || (i % 8) AS component
                FROM (SELECT i, i // {per_file} AS f, i % {per_file} AS k, (i % {per_file}) * 117 AS off
                      FROM range({rows}) t(i))
            ) TO '{logs_dir}/part-00000.parquet' (FORMAT parquet, COMPRESSION zstd)""")
    templates = {tid: {"service": s, "template": text, "count": 0}
                 for s in SERVICES for tid, text in [_template(s, n) for n in range(TEMPLATES_PER_SERVICE)]}
    shard_path.write_text(json.dumps({"templates": templates, "aliases": {}, "files": files, "undated": [],
                                      "lines_read": rows}))


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _quiet() -> None:
    """In a child: DuckDB's progress bar (stdout) off the report."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)


def load_one(home: str, year: int) -> tuple[float, float, int, float]:
    """In a fresh process: the real load step for one year; returns (seconds, CPU seconds, rows, peak RSS
    MiB)."""
    from logpilot_dagster.ingest.backfill import load_year
    from logpilot_dagster.ingest.registry import SchemaRegistry
    from logpilot_dagster.settings import LogPilotPaths

    _quiet()
    paths = LogPilotPaths.from_env(home)
    start, cpu = time.perf_counter(), _cpu_s()
    result = load_year(paths, SchemaRegistry.load(paths), year)
    return time.perf_counter() - start, _cpu_s() - cpu, result.rows, _peak_rss_mib()


def old_key_load_one(db: str, parquet: str, year: int, keyed: bool) -> tuple[float, float, int, float]:
    """In a fresh process: the former statement for a new year (sorted by the key) into ``logs`` with or
    without the former primary key; returns (seconds, CPU seconds, rows, peak RSS MiB)."""
    from logpilot_dagster.storage.warehouse import SCHEMA

    _quiet()
    with duckdb.connect(db) as con:
        ddl = SCHEMA.split(";")[0] + ";"
        con.execute(ddl.replace("event_id VARCHAR,", "event_id VARCHAR PRIMARY KEY," if keyed else "event_id VARCHAR,"))
        start, cpu = time.perf_counter(), _cpu_s()
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM logs WHERE year = ?", [year])
        rows = con.execute(f"INSERT INTO logs SELECT * FROM read_parquet('{parquet}') ORDER BY event_id"
                           ).fetchone()[0]
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
        return time.perf_counter() - start, _cpu_s() - cpu, rows, _peak_rss_mib()


def live_batch(offset: int, n: int):
    """``n`` records of the year in progress over ``PARTITIONS`` partitions, from ``offset`` on each."""
    from logpilot_dagster.ingest.transform import LOGS_SCHEMA, QUARANTINE_SCHEMA, source_key
    from logpilot_dagster.stream.batches import DISCOVERY_SCHEMA
    from logpilot_dagster.stream.records import record_source
    from logpilot_dagster.stream.sink import Batch

    per = n // PARTITIONS
    with duckdb.connect() as con:
        con.register("parts", pa.table({"p": list(range(PARTITIONS)),
                                        "source": [record_source(TOPIC, p) for p in range(PARTITIONS)],
                                        "prefix": [source_key(record_source(TOPIC, p)) for p in range(PARTITIONS)]}))
        rows = con.execute(f"""
            SELECT prefix || ':' || o || '@' || (1767225600000 + o * 10) AS event_id,
                   TIMESTAMP '{LIVE_YEAR}-01-01' + to_microseconds(o * 10000) AS ts,
                   'payments-api' AS service, 'INFO' AS level,
                   'bench-payments-api-' || lpad((o % {TEMPLATES_PER_SERVICE})::VARCHAR, 2, '0') AS template_id,
                   'payments-api step ' || (o % {TEMPLATES_PER_SERVICE}) || ' took ' || (o % 997) || ' ms' AS message,
                   [(o % 997)::VARCHAR] AS params, source, o AS source_offset, {LIVE_YEAR} AS year,
                   'worker-1' AS component
            FROM parts, range({offset}, {offset + per}) t(o) ORDER BY p, o""").fetch_arrow_table()
    templates = [_template("payments-api", k) for k in range(TEMPLATES_PER_SERVICE)]
    return Batch(TOPIC, rows.cast(LOGS_SCHEMA), QUARANTINE_SCHEMA.empty_table(), DISCOVERY_SCHEMA.empty_table(),
                 {p: offset + per for p in range(PARTITIONS)}, {p: "bench" for p in range(PARTITIONS)},
                 pa.table({"template_id": [t for t, _ in templates], "template": [x for _, x in templates],
                           "service": ["payments-api"] * len(templates)}), {})


def live_costs(db: str, n: int, keyed: bool = False, batches: int = 3) -> dict:
    """In a fresh process: µs per record of the first batch, the steady ones and a replayed one (the last batch
    again), each written by ``write_batch`` on the write process's ``HeldConnection`` (``keyed``: on a plain
    connection with the same settings, which keeps the former key that ``ensure_schema`` would migrate)."""
    from contextlib import nullcontext

    from logpilot_dagster.storage.warehouse import SCHEMA, HeldConnection
    from logpilot_dagster.stream.sink import write_batch

    _quiet()
    work = [live_batch(b * (n // PARTITIONS), n) for b in range(batches)]
    work.append(live_batch((batches - 1) * (n // PARTITIONS), n))
    if keyed:
        raw = duckdb.connect(db, config={"threads": 1, "checkpoint_threshold": "64MB"})
        raw.execute(SCHEMA.replace("event_id VARCHAR,", "event_id VARCHAR PRIMARY KEY,", 1))
        use = lambda: nullcontext(raw)  # noqa: E731
    else:
        held = HeldConnection(db, linger_s=3600)
        use = held.use
    times, cpus, inserted = [], [], []
    for batch in work:
        start, cpu = time.perf_counter(), _cpu_s()
        with use() as con:
            inserted.append(write_batch(con, batch))
        times.append((time.perf_counter() - start) / batch.rows.num_rows * 1e6)
        cpus.append((_cpu_s() - cpu) / batch.rows.num_rows * 1e6)
    (raw if keyed else held).close()
    steady = slice(1, len(work) - 1)
    return {"first_us": times[0], "steady_us": sum(times[steady]) / len(times[steady]), "replay_us": times[-1],
            "steady_cpu_us": sum(cpus[steady]) / len(cpus[steady]), "replay_inserted": inserted[-1]}


def _in_fresh_process(fn, *args):
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _line(label: str, seconds: float, cpu: float, rows: int, rss: float) -> str:
    return (f"  {label:<30} {rows:>11,} rows {seconds:7.1f} s  {seconds / rows * 1e6:6.2f} s/M rows wall "
            f"{cpu / rows * 1e6:6.2f} CPU  peak RSS {rss:6.0f} MiB")


def _live_line(label: str, c: dict) -> str:
    return (f"  {label:<30} µs/record wall: first {c['first_us']:6.2f}  steady {c['steady_us']:6.2f} "
            f"(CPU {c['steady_cpu_us']:6.2f})  replayed {c['replay_us']:6.2f} (inserted {c['replay_inserted']})")


def _history_scan_s(db: str) -> float:
    """The one part of a load that reads the whole history: the template statistics of ``refresh_templates``."""
    with duckdb.connect(db, read_only=True) as con:
        con.execute("SET enable_progress_bar = false")
        start = time.perf_counter()
        con.execute("SELECT template_id, min(ts), max(ts), count(*) FROM logs GROUP BY 1").fetchall()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows-per-year", type=int, default=20_000_000)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--pk-years", type=int, default=2, help="years loaded for the old-key baseline (0: skip)")
    parser.add_argument("--batch", type=int, default=150_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_scale_", dir=args.workdir))
    home = work / "home"
    try:
        from logpilot_dagster.settings import LogPilotPaths

        paths = LogPilotPaths.from_env(home).ensure()
        print(f"{args.years} years x {args.rows_per_year:,} rows, live batches of {args.batch:,} ({work}); "
              f"load average {os.getloadavg()[0]:.1f}")
        print("live writer on an empty warehouse (no key):")
        empty = str(work / "empty.duckdb")
        print(_live_line("0 rows of history", _in_fresh_process(live_costs, empty, args.batch)), flush=True)
        print("year loads, ingest.backfill.load_year (no key, the default):")
        loads = []
        for y in range(args.years):
            year = FIRST_YEAR + y
            start = time.perf_counter()
            generate_year(home, year, args.rows_per_year)
            generated = time.perf_counter() - start
            seconds, cpu, rows, rss = _in_fresh_process(load_one, str(home), year)
            loads.append((seconds / rows, cpu / rows, rss))
            print(_line(f"{year} (generated in {generated:.0f} s)", seconds, cpu, rows, rss), flush=True)
            if y >= args.pk_years:
                shutil.rmtree(paths.parquet_dir / "logs" / f"year={year}")
        (first, cpu_first, rss_first), (last, cpu_last, rss_last) = loads[0], loads[-1]
        print(f"  last / first year: {last / first:.2f}x wall per row, {cpu_last / cpu_first:.2f}x CPU per row "
              f"(target <= 1.2), peak RSS {rss_last / rss_first:.2f}x")
        print(f"  of which template statistics over the whole history: {_history_scan_s(str(paths.db_path)):.1f} s")
        history = args.years * args.rows_per_year
        print(f"live writer on the loaded warehouse (no key), {history:,} rows of history:")
        print(_live_line(f"{history:,} rows of history", _in_fresh_process(live_costs, str(paths.db_path), args.batch)))
        print(f"  warehouse file {paths.db_path.stat().st_size / 2**30:.1f} GiB", flush=True)
        if args.pk_years:
            print(f"baseline: old PRIMARY KEY on event_id, {args.pk_years} years, former statement "
                  "(INSERT ... ORDER BY event_id), next to the same statement without the key:")
            for keyed in (True, False):
                label = "old PRIMARY KEY" if keyed else "no key"
                db = str(work / f"{'keyed' if keyed else 'unkeyed'}.duckdb")
                for y in range(args.pk_years):
                    year = FIRST_YEAR + y
                    parquet = str(paths.parquet_dir / "logs" / f"year={year}" / "*.parquet")
                    seconds, cpu, rows, rss = _in_fresh_process(old_key_load_one, db, parquet, year, keyed)
                    print(_line(f"{label}, {year}", seconds, cpu, rows, rss), flush=True)
                size = args.pk_years * args.rows_per_year
                print(_live_line(f"{label}, {size:,} rows of history",
                                 _in_fresh_process(live_costs, db, args.batch, keyed)), flush=True)
                Path(db).unlink()
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
