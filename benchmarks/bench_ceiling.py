"""The backfill of one year against a DuckDB-alone pipeline on the same corpus, measured side by side in one run.

Corpus: HDFS-like lines from the Loghub-2k HDFS sample (https://github.com/logpai/loghub), the 2,000 lines
repeated to ``--lines`` with every digit of the message part re-drawn at random (the header stays a valid
timestamp), in one landing file ``landing_zone/HDFS/2023/HDFS.log`` with the default source declaration.

- baseline (the ceiling: DuckDB alone, no Drain, no Dagster): read the lines, split the header with one
  ``regexp_extract``, mask IPv4 addresses with one ``regexp_replace``, write zstd Parquet, load it into a DuckDB
  file (a fresh interpreter, timed inside it after ``import duckdb``);
- LogPilot: ``logpilot backfill --years 2023 --quiet`` on a fresh home, the command users run, timed from
  outside (interpreter start and imports included), then broken down into stages from the year's shard
  document (staging timings) and the Dagster event log (steps, post-load assets).

Both sides run twice, alternating (baseline, LogPilot, baseline, LogPilot); the ratio is baseline seconds over
LogPilot seconds of the faster run of each. The LogPilot process may write ``.pyc`` files (as an installed venv
has them), so the first round also pays for compiling what it imports.

    uv run python benchmarks/bench_ceiling.py --lines 2000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loghub import LOGHUB_DIR, ground_truth  # noqa: E402

YEAR = 2023
HDFS_FORMAT = "<Date> <Time> <Pid> <Level> <Component>: <Content>"
IPV4 = r"(^|[^A-Za-z0-9_.])((?:25[0-5]|2[0-4]\d|[01]?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|[01]?\d?\d)){3})"



def duckdb_alone(src: str, parquet: str, db: str) -> dict:
    """The baseline, timed after ``import duckdb``: lines -> header regex -> mask regex -> zstd Parquet -> file."""
    import duckdb

    start = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"""COPY (
        SELECT h.date, h.time, h.pid, h.level, h.component,
               regexp_replace(h.content, $ip, '\\1<IP_REDACTED>', 'g') AS message, row_number() OVER () AS line_no
        FROM (SELECT regexp_extract(line, '^(\\d+) (\\d+) (\\d+) (\\w+) ([^:]+): (.*)$',
                                    ['date', 'time', 'pid', 'level', 'component', 'content']) AS h
              FROM read_csv($src, columns = {{'line': 'VARCHAR'}}, delim = $delim, quote = '', escape = '',
                            header = false, auto_detect = false))
    ) TO '{parquet}' (FORMAT parquet, COMPRESSION zstd)""", {"ip": IPV4, "src": src, "delim": chr(1)})
    con.close()
    middle = time.perf_counter()
    con = duckdb.connect(db)
    con.execute("CREATE TABLE logs AS SELECT * FROM read_parquet($p)", {"p": parquet})
    rows = con.execute("SELECT count(*) FROM logs").fetchone()[0]
    con.close()
    return {"rows": rows, "to_parquet": middle - start, "load": time.perf_counter() - middle,
            "seconds": time.perf_counter() - start}


def write_corpus(path: Path, lines: int, seed: int = 1) -> int:
    """``lines`` HDFS lines (the Loghub-2k sample repeated) with the message digits re-drawn; returns bytes."""
    raw = (LOGHUB_DIR / "HDFS" / "HDFS_2k.log").read_text(encoding="utf-8").splitlines()
    contents = [row["Content"] for row in ground_truth("HDFS")]
    base = np.frombuffer(("\n".join(raw) + "\n").encode(), np.uint8)
    in_message = np.zeros(len(base), bool)
    pos = 0
    for line, content in zip(raw, contents):
        assert line.endswith(content)
        in_message[pos + len(line) - len(content): pos + len(line)] = True
        pos += len(line) + 1
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(path, "wb") as out:
        for start in range(0, lines, len(raw)):
            n = min(len(raw), lines - start)
            chunk = base.copy() if n == len(raw) else base[: int(np.flatnonzero(base == 10)[n - 1]) + 1].copy()
            digits = in_message[: len(chunk)] & (chunk >= 48) & (chunk <= 57)
            chunk[digits] = rng.integers(48, 58, int(digits.sum()), dtype=np.uint8)
            out.write(chunk.tobytes())
            written += len(chunk)
    return written


def write_home(home: Path, corpus: Path) -> None:
    """A fresh LOGPILOT_HOME whose landing zone holds the corpus (a hard link) and the default declaration."""
    landing = home / "landing_zone" / "HDFS" / str(YEAR) / "HDFS.log"
    landing.parent.mkdir(parents=True)
    os.link(corpus, landing)
    (home / "sources.yaml").write_text(yaml.safe_dump(
        {"sources": [{"name": "HDFS", "glob": "HDFS/**/*.log", "service": "HDFS", "format": HDFS_FORMAT}]}))


def baseline(corpus: Path, work: Path) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out = subprocess.run([sys.executable, __file__, "--baseline", str(corpus), str(work / "logs.parquet"),
                          str(work / "logs.duckdb")], capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def logpilot(corpus: Path, home: Path) -> dict:
    shutil.rmtree(home, ignore_errors=True)
    write_home(home, corpus)
    env = {**os.environ, "LOGPILOT_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed venv keeps its .pyc files; compiling is no stage
    cli = Path(sys.executable).with_name("logpilot")
    start = time.perf_counter()
    proc = subprocess.run([str(cli), "--home", str(home), "backfill", "--years", str(YEAR), "--quiet"], env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(proc.stdout + proc.stderr)
    breakdown = json.loads(subprocess.run([sys.executable, __file__, "--breakdown", str(home)], env=env,
                                          capture_output=True, text=True, check=True).stdout.splitlines()[-1])
    return {"seconds": seconds, **breakdown}


def breakdown(home: Path) -> dict:
    """Seconds of each stage of the last backfill in ``home``: staging from the shard, steps and assets from
    Dagster's event log."""
    import dagster as dg

    shard = json.loads((home / "state" / "shards" / f"year={YEAR}.json").read_text())
    instance = dg.DagsterInstance.get()
    steps: dict[str, float] = {}
    runs: list[float] = []
    for run in instance.get_runs():
        stats = instance.get_run_stats(run.run_id)
        runs.append(stats.end_time - stats.launch_time if stats.launch_time else stats.end_time - stats.start_time)
        for step in instance.get_run_step_stats(run.run_id):
            steps[step.step_key] = step.end_time - step.start_time
    return {"lines": shard["lines_read"], "stage": shard["seconds"], "timings": shard.get("timings", {}),
            "steps": steps, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--breakdown", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        print(json.dumps(duckdb_alone(*args.baseline)))
        return
    if args.breakdown:
        print(json.dumps(breakdown(Path(args.breakdown))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus" / "HDFS.log"
        size = write_corpus(corpus, args.lines)
        base_runs, ours_runs = [], []
        for _ in range(args.rounds):
            base_runs.append(baseline(corpus, Path(tmp) / "duckdb"))
            ours_runs.append(logpilot(corpus, Path(tmp) / "home"))
    base = min(base_runs, key=lambda r: r["seconds"])
    ours = min(ours_runs, key=lambda r: r["seconds"])
    assert base["rows"] == args.lines and ours["lines"] == args.lines, (base["rows"], ours["lines"])
    print(f"corpus: {args.lines:,} HDFS-like lines ({size / 1e6:.0f} MB), Loghub-2k HDFS with digits re-drawn")
    print(f"DuckDB alone (read, header regex, mask regex, zstd Parquet, load): {base['seconds']:6.1f} s "
          f"({base['to_parquet']:.1f} s to Parquet, {base['load']:.1f} s load)   runs: "
          + ", ".join(f"{r['seconds']:.1f}" for r in base_runs))
    print(f"logpilot backfill --years {YEAR} (end to end, process wall):    {ours['seconds']:6.1f} s   runs: "
          + ", ".join(f"{r['seconds']:.1f}" for r in ours_runs))
    ratio = base["seconds"] / ours["seconds"]
    print(f"ratio (DuckDB alone / LogPilot, faster runs): {ratio:.2f}   target >= 0.5")
    steps, timings = ours["steps"], ours["timings"]
    staged = steps.get("staged_year", 0.0)
    load = steps.get("logs_table", 0.0)
    post = {k: v for k, v in steps.items() if k not in ("landing_files", "staged_year", "logs_table")}
    in_steps = sum(steps.values())
    print("LogPilot breakdown of the faster run (seconds; staging stages are busy time, they overlap):")
    for name in ("read", "parse", "mask", "mine", "params", "arrow", "parquet_wait", "parquet_write"):
        print(f"  {name:24s} {timings.get(name, 0.0):6.2f}")
    print(f"  {'staged_year step':24s} {staged:6.2f}   (shard: {ours['stage']:.2f})")
    print(f"  {'load (logs_table step)':24s} {load:6.2f}")
    print(f"  {'landing_files step':24s} {steps.get('landing_files', 0.0):6.2f}")
    for key, value in sorted(post.items()):
        print(f"  {key:24s} {value:6.2f}")
    print(f"  {'Dagster + imports (rest)':24s} {ours['seconds'] - in_steps:6.2f}   "
          f"(runs: {', '.join(f'{r:.1f}' for r in ours['runs'])})")
    print(json.dumps({"lines": args.lines, "duckdb_s": round(base["seconds"], 2),
                      "logpilot_s": round(ours["seconds"], 2), "ratio": round(ratio, 3),
                      "steps": {k: round(v, 2) for k, v in steps.items()},
                      "timings": {k: round(v, 2) for k, v in timings.items()}}))


if __name__ == "__main__":
    main()
