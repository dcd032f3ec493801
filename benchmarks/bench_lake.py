"""Year loads on the lake profile with 1, 2 and 3 concurrent writers vs the embedded single-writer path.

Sample data (``logpilot sample``'s generator) for three years is staged once (staging never touches the
warehouse and is the same on both profiles); then each configuration loads the three staged years into an empty
warehouse, every writer a separate process (``load_year``, what the ``logs_table`` asset runs):

- baseline: the embedded DuckDB file, one process loading the years one after the other (the file takes one
  writer at a time, so this is what the embedded profile can do);
- lake, N writers: DuckLake with its catalog in a fresh Postgres database (``pgserver``) and its data in a
  directory (or on S3 with ``--s3``: SeaweedFS on loopback), N processes at once, the years dealt round-robin.

Printed per configuration: wall time, rows/s, CPU per row (user + system of the writer processes; Postgres and
the S3 server not included), commit-conflict retries, and the ratios to the baseline.

    python benchmarks/bench_lake.py --lines 600000
    python benchmarks/bench_lake.py --lines 600000 --s3
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from logpilot_dagster.ingest.backfill import stage_year
from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.ingest.sample_data import write_sample_home
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.object_store import LocalObjectStore

YEARS = (2022, 2023, 2024)
_LOADER = """
import logging, sys
logging.basicConfig(level=logging.WARNING, format="RETRY %(message)s")
from logpilot_dagster.ingest.backfill import load_year
from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.settings import LogPilotPaths
paths = LogPilotPaths.from_env(sys.argv[1])
print(sum(load_year(paths, SchemaRegistry.load(paths), int(y)).rows for y in sys.argv[2:]))
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_writers(home: Path, env: dict[str, str], writers: int) -> dict:
    """Load YEARS with ``writers`` concurrent processes; wall, CPU, rows, retries."""
    shares = [[str(y) for y in YEARS[i::writers]] for i in range(writers)]
    cpu0, start = _children_cpu(), time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", _LOADER, str(home), *share], env={**os.environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for share in shares]
    outputs = [p.communicate() for p in procs]
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu0
    for p, (_, err) in zip(procs, outputs):
        if p.returncode:
            raise RuntimeError(f"a writer failed: {err[-3000:]}")
    rows = sum(int(out.strip().splitlines()[-1]) for out, _ in outputs)
    retries = sum(err.count("RETRY") for _, err in outputs)
    return {"wall": wall, "cpu": cpu, "rows": rows, "retries": retries}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=600_000, help="sample lines over the three years")
    parser.add_argument("--s3", action="store_true", help="lake data on S3 (SeaweedFS on loopback), not a directory")
    args = parser.parse_args()

    from logpilot_dagster.storage.lake import start_local_catalog

    with tempfile.TemporaryDirectory(prefix="bench_lake_") as tmp:
        home = Path(tmp) / "home"
        paths = LogPilotPaths.from_env(home).ensure()
        write_sample_home(home, total_lines=args.lines, years=YEARS)
        start = time.perf_counter()
        for year in YEARS:
            stage_year(paths, LocalObjectStore(paths.landing_zone), SchemaRegistry.load(paths), year)
        print(f"staged {args.lines:,} sample lines, {len(YEARS)} years, in {time.perf_counter() - start:.1f} s "
              f"(not part of the figures); load average {os.getloadavg()[0]:.1f}")
        server = start_local_catalog(Path(tmp) / "catalog")
        socket_dir = server.get_postmaster_info().socket_dir
        s3 = None
        s3_env: dict[str, str] = {}
        if args.s3:
            import boto3

            from logpilot_dagster.broker.seaweedfs import SeaweedS3

            s3 = SeaweedS3(Path(tmp) / "s3").start()
            s3_env = {**s3.client_env(), "LOGPILOT_LAKE_S3_ENDPOINT_URL": s3.endpoint}
            boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1", aws_access_key_id="logpilot",
                         aws_secret_access_key="logpilot").create_bucket(Bucket="lake")
        results = {}
        try:
            results["embedded, 1 writer (baseline)"] = run_writers(home, {"LOGPILOT_PROFILE": "embedded"}, 1)
            for writers in (1, 2, 3):
                database = f"bench_{writers}"
                server.psql(f"CREATE DATABASE {database};")
                data = f"s3://lake/w{writers}/" if args.s3 else str(Path(tmp) / f"lake_w{writers}")
                env = {"LOGPILOT_PROFILE": "lake", "LOGPILOT_LAKE_DATA": data, **s3_env,
                       "LOGPILOT_LAKE_CATALOG": f"postgres:host={socket_dir} dbname={database} user=postgres"}
                results[f"lake, {writers} writer{'s' if writers > 1 else ''}"] = run_writers(home, env, writers)
        finally:
            if s3 is not None:
                s3.stop()
            server.cleanup()
        base = results["embedded, 1 writer (baseline)"]
        where = "S3 (SeaweedFS)" if args.s3 else "a directory"
        print(f"\nlake data on {where}; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
        print(f"{'configuration':32} {'rows':>9} {'wall s':>7} {'rows/s':>9} {'CPU us/row':>10} {'retries':>7} "
              f"{'wall vs base':>12} {'CPU vs base':>11}")
        for name, r in results.items():
            print(f"{name:32} {r['rows']:>9,} {r['wall']:>7.2f} {r['rows'] / r['wall']:>9,.0f} "
                  f"{r['cpu'] / r['rows'] * 1e6:>10.2f} {r['retries']:>7} {r['wall'] / base['wall']:>12.2f} "
                  f"{r['cpu'] / base['cpu']:>11.2f}")
        if len({r["rows"] for r in results.values()}) != 1:
            print("ROW COUNTS DIFFER between configurations")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
