"""Tiering throughput (hot DuckDB ``logs`` → warm zstd Parquet objects) against a plain
``COPY (SELECT ...) TO 'x.parquet' (FORMAT parquet, COMPRESSION zstd)`` of the same rows, in one run.

    uv run python benchmarks/bench_tiering.py --rows 10000000

The rows are generated (``logpilot_dagster_tests.lifecycle_data.insert_logs``: 3 services, 2021-01 to
2026-11, one in 97 messages with a pseudonym token) into a fresh warehouse (``logs`` without a key). The
baseline runs first (it only reads). Tiering then does everything a real run does: one object per service
and month (sorted by ts, statistics only on ts/year/source_offset), each read back and checked (sha256, rows),
the token index, and one transaction that catalogs the objects and removes the rows from ``logs``. Wall time
and process CPU (all DuckDB threads) are both reported: on a shared machine the CPU ratio is the steadier one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from logpilot_dagster.lifecycle.settings import TierStoreSettings  # noqa: E402
from logpilot_dagster.lifecycle.store import tier_store  # noqa: E402
from logpilot_dagster.lifecycle.tiering import Tiering, TieringPolicy  # noqa: E402
from logpilot_dagster.settings import LogPilotPaths  # noqa: E402
from logpilot_dagster.storage.warehouse import connect, ensure_schema  # noqa: E402
from logpilot_dagster_tests.lifecycle_data import insert_logs  # noqa: E402

NOW = datetime(2026, 12, 2)
POLICY = TieringPolicy(warm_after_days=30, cold_after_days=100_000)  # hot -> warm only


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--dir", help="scratch directory (default: a temporary one)")
    args = parser.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="bench_tiering_"))
    shutil.rmtree(root / "home", ignore_errors=True)
    paths = LogPilotPaths.from_env(root / "home").ensure()
    try:
        start = time.perf_counter()
        with connect(paths.db_path) as con:
            ensure_schema(con)
            insert_logs(con, args.rows, datetime(2021, 1, 1), datetime(2026, 12, 1))
            cutoff = NOW.replace(day=2, month=11)
            (moving,) = con.execute("SELECT count(*) FROM logs WHERE ts < ?", [cutoff]).fetchone()
        print(f"generated {args.rows:,} rows in {time.perf_counter() - start:.1f}s; {moving:,} older than 30 days")

        baseline = root / "baseline.parquet"
        with connect(paths.db_path) as con:
            start, cpu = time.perf_counter(), time.process_time()
            con.execute(f"COPY (SELECT * FROM logs WHERE ts < '{cutoff}') TO '{baseline}' "
                        "(FORMAT parquet, COMPRESSION zstd)")
            copy_s, copy_cpu = time.perf_counter() - start, time.process_time() - cpu
        copy_bytes = baseline.stat().st_size
        baseline.unlink()

        settings = TierStoreSettings.from_env(paths)
        start, cpu = time.perf_counter(), time.process_time()
        report = Tiering(paths, tier_store(settings), settings, POLICY, NOW).run()
        tier_s, tier_cpu = time.perf_counter() - start, time.process_time() - cpu
        assert report.rows_to_warm == moving, (report.rows_to_warm, moving)
        tier_bytes = sum(p.stat().st_size for p in (paths.home / "tiers").rglob("*.parquet"))

        result = {
            "rows_moved": moving,
            "copy_rows_per_s": round(moving / copy_s), "copy_s": round(copy_s, 2), "copy_bytes": copy_bytes,
            "tiering_rows_per_s": round(moving / tier_s), "tiering_s": round(tier_s, 2), "tier_bytes": tier_bytes,
            "copy_cpu_s": round(copy_cpu, 2), "tiering_cpu_s": round(tier_cpu, 2),
            "objects": report.warm_objects_written, "ratio_tiering_vs_copy": round(copy_s / tier_s, 3),
            "cpu_ratio_tiering_vs_copy": round(copy_cpu / tier_cpu, 3),
            "tiering_steps_s": report.seconds,
        }
        print(f"plain COPY to one zstd Parquet file: {result['copy_rows_per_s']:>12,} rows/s  ({copy_s:.1f}s, "
              f"{copy_bytes / 2**20:.0f} MiB)")
        print(f"tiering hot -> warm ({report.warm_objects_written} objects, verified, rows removed from logs): "
              f"{result['tiering_rows_per_s']:>12,} rows/s  ({tier_s:.1f}s, {tier_bytes / 2**20:.0f} MiB)")
        print(f"ratio tiering / COPY: {result['ratio_tiering_vs_copy']:.2f} by wall time, "
              f"{result['cpu_ratio_tiering_vs_copy']:.2f} by process CPU ({copy_cpu:.1f}s vs {tier_cpu:.1f}s); "
              f"steps: {report.seconds}")
        print(json.dumps(result))
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
