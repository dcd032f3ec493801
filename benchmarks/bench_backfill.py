"""Backfill throughput vs a plain Drain3 loop, on one Loghub-derived corpus, measured side by side in one run.

Corpus: the 16 Loghub-2k systems (https://github.com/logpai/loghub, corrected ground truth from
https://github.com/logpai/logparser), each replicated to ``--lines / 16`` lines with every digit of the
message part re-drawn at random (so identical lines do not flatter a cache). Both sides get each system's
Loghub-tuned Drain settings (masks, similarity threshold, depth) from ``formats.json``.

- baseline (the issue's reference loop): one default ``drain3.TemplateMiner`` and ``add_log_message`` over every
  line of the mixed corpus (systems interleaved), as a plain Drain3 user would run it;
- tuned baseline (stricter, also printed): one miner per system with that system's Loghub settings, fed only
  the message part of each line (header split off for free);
- LogPilot: the backfill end to end from files on disk: read, header parse, PII masking, mining, Parquet
  staging and the DuckDB load (``stage_year`` + ``load_year`` for every year).

Grouping accuracy is measured on the unperturbed Loghub-2k ground truth for both (GA: a line is right when its
predicted group holds exactly the lines of its true group).

    python benchmarks/bench_backfill.py --lines 1000000
    python benchmarks/bench_backfill.py --memory 10000000   # peak RSS of staging one big year
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loghub import LOGHUB_DIR, grouping_accuracy, ground_truth, systems  # noqa: E402

from logpilot_dagster.ingest.backfill import load_year, stage_year  # noqa: E402
from logpilot_dagster.storage.object_store import LocalObjectStore  # noqa: E402
from logpilot_dagster.ingest.registry import SchemaRegistry  # noqa: E402
from logpilot_dagster.settings import LogPilotPaths  # noqa: E402

#: Systems whose ground truth splits groups by literal numbers: our generic number masks stay off for them.
NO_GENERIC_MASKS = {"Linux"}
#: Year of each system's data (path year for formats without one; the partition for all).
YEARS = {"HDFS": 2008, "Hadoop": 2015, "Spark": 2017, "Zookeeper": 2015, "BGL": 2005, "HPC": 2004,
         "Thunderbird": 2005, "Windows": 2016, "Linux": 2005, "Android": 2017, "HealthApp": 2017, "Apache": 2005,
         "Proxifier": 2017, "OpenSSH": 2017, "OpenStack": 2017, "Mac": 2017}


def source_entries() -> list[dict]:
    out = []
    for name, spec in systems().items():
        out.append({"name": name, "glob": f"{name}/**/*.log", "service": name, "format": spec["log_format"],
                    "drain": {"sim_th": spec["drain_similarity_threshold"], "depth": spec["drain_depth"],
                              "masks": spec["drain_masks"], "generic_masks": name not in NO_GENERIC_MASKS,
                              "wildcard_aware": False}})  # the Loghub settings were tuned for plain Drain
    return out


def perturb(text: str, r: random.Random) -> str:
    return "".join(str(r.randrange(10)) if ch.isdigit() else ch for ch in text)


def write_home(home: Path, per_system: int | None, seed: int = 1) -> tuple[dict[str, list[str]], list[str]]:
    """Landing files (one per system) and sources.yaml; returns each system's message parts (file order) and
    the whole corpus's raw lines, interleaved."""
    r = random.Random(seed)
    home.mkdir(parents=True, exist_ok=True)
    (home / "sources.yaml").write_text(yaml.safe_dump({"sources": source_entries()}, sort_keys=False))
    contents: dict[str, list[str]] = {}
    raw_lines: list[str] = []
    for name in systems():
        rows = ground_truth(name)
        raw = (LOGHUB_DIR / name / f"{name}_2k.log").read_text(encoding="utf-8", errors="replace").splitlines()
        lines, msgs = [], []
        total = per_system or len(raw)
        for i in range(total):
            line, content = raw[i % len(raw)], rows[i % len(rows)]["Content"]
            if per_system and i >= len(raw) and line.endswith(content):
                new = perturb(content, r)
                line, content = line[: len(line) - len(content)] + new, new
            lines.append(line)
            msgs.append(content)
        path = home / "landing_zone" / name / str(YEARS[name]) / f"{name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        contents[name] = msgs
        raw_lines.extend(lines)
    r.shuffle(raw_lines)
    return contents, raw_lines


def plain_loop(lines: list[str]) -> float:
    """Seconds for one default TemplateMiner over every raw line."""
    from drain3 import TemplateMiner

    miner = TemplateMiner()
    start = time.perf_counter()
    for line in lines:
        miner.add_log_message(line)
    return time.perf_counter() - start


def tuned_drain3(contents: dict[str, list[str]]) -> tuple[float, dict[str, list[str]]]:
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    specs = systems()
    groups, elapsed = {}, 0.0
    for name, msgs in contents.items():
        cfg = TemplateMinerConfig()
        cfg.profiling_enabled = False
        cfg.drain_sim_th = specs[name]["drain_similarity_threshold"]
        cfg.drain_depth = specs[name]["drain_depth"]
        cfg.masking_instructions = [MaskingInstruction(m, "*") for m in specs[name]["drain_masks"]]
        miner = TemplateMiner(config=cfg)
        start = time.perf_counter()
        groups[name] = [str(miner.add_log_message(m)["cluster_id"]) for m in msgs]
        elapsed += time.perf_counter() - start
    return elapsed, groups


def _stage(home: Path, year: int) -> int:
    paths = LogPilotPaths.from_env(home)
    return stage_year(paths, LocalObjectStore(paths.landing_zone), SchemaRegistry.load(paths), year).lines_read


def logpilot_backfill(home: Path, workers: int = 2) -> tuple[float, int]:
    """Stage years in ``workers`` parallel processes and load each into DuckDB as soon as it is staged, one at a
    time: the same shape as the Dagster deployment (one run per year, the DuckDB writer pool limited to 1)."""
    LogPilotPaths.from_env(home).ensure()
    years = sorted(set(YEARS.values()), key=lambda y: -sum(1 for s in YEARS if YEARS[s] == y))
    start = time.perf_counter()
    lines = 0
    with ProcessPoolExecutor(workers) as pool:
        pending = {pool.submit(_stage, home, year): year for year in years}
        for done in as_completed(pending):
            lines += done.result()
            paths = LogPilotPaths.from_env(home)
            load_year(paths, SchemaRegistry.load(paths), pending[done])
    return time.perf_counter() - start, lines


def logpilot_backfill_isolated(home: Path) -> tuple[float, int]:
    """``logpilot_backfill`` in a fresh interpreter (timed inside it, after imports), so its worker processes do
    not fork this process's in-memory corpus."""
    out = subprocess.run([sys.executable, __file__, "--backfill-home", str(home)], capture_output=True, text=True,
                         check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["seconds"], result["lines"]


def logpilot_groups(home: Path) -> dict[str, list[str]]:
    import duckdb

    con = duckdb.connect(str(home / "logs.duckdb"), read_only=True)
    try:
        return {name: [r[0] for r in con.execute(
            "SELECT template_id FROM logs WHERE service = ? ORDER BY source_offset", [name]).fetchall()]
            for name in systems()}
    finally:
        con.close()


def accuracy(groups: dict[str, list[str]]) -> dict[str, float]:
    return {name: grouping_accuracy([r["EventId"] for r in ground_truth(name)], groups[name]) for name in systems()}


def memory_probe(lines: int) -> None:
    """Stage one year of ``lines`` sample lines in a child process and print its peak RSS."""
    from logpilot_dagster.ingest.sample_data import write_sample_home

    with tempfile.TemporaryDirectory() as tmp:
        write_sample_home(Path(tmp), total_lines=lines, years=(2024,), bad_files=False)
        code = ("import resource,sys;from logpilot_dagster.ingest.backfill import stage_year;"
                "from logpilot_dagster.storage.object_store import LocalObjectStore;"
                "from logpilot_dagster.ingest.registry import SchemaRegistry;from logpilot_dagster.settings import LogPilotPaths;"
                f"p=LogPilotPaths.from_env({tmp!r});r=stage_year(p,LocalObjectStore(p.landing_zone),"
                "SchemaRegistry.load(p),2024);"
                "print(r.lines_read, round(r.lines_per_s), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss//1024)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        print(f"staging one year of {int(out[0]):,} lines: {int(out[1]):,} lines/s, peak RSS {out[2]} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000, help="corpus size over the 16 systems")
    parser.add_argument("--memory", type=int, nargs="*", help="peak-RSS probe for years of these sizes")
    parser.add_argument("--backfill-home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.backfill_home:
        seconds, lines = logpilot_backfill(Path(args.backfill_home))
        print(json.dumps({"seconds": seconds, "lines": lines}))
        return
    if args.memory:
        for n in args.memory:
            memory_probe(n)
        return
    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / "big", Path(tmp) / "small"
        contents, raw_lines = write_home(big, args.lines // 16)
        n = len(raw_lines)
        ours_s, ours_lines = logpilot_backfill_isolated(big)
        base_s = plain_loop(raw_lines)
        tuned_s, _ = tuned_drain3(contents)
        assert ours_lines == n, (ours_lines, n)
        ga_contents, _ = write_home(small, None)
        _, base_groups = tuned_drain3(ga_contents)
        logpilot_backfill_isolated(small)
        ga_base, ga_ours = accuracy(base_groups), accuracy(logpilot_groups(small))
    base_rate, tuned_rate, ours_rate = n / base_s, n / tuned_s, n / ours_s
    print(f"corpus: {n:,} lines (16 Loghub-2k systems, digits perturbed)")
    print(f"plain Drain3 loop (default miner, raw lines): {base_rate:>10,.0f} lines/s ({base_s:.1f} s)")
    print(f"tuned Drain3 (per system, message only):      {tuned_rate:>10,.0f} lines/s ({tuned_s:.1f} s)")
    print(f"LogPilot backfill end to end:                  {ours_rate:>10,.0f} lines/s ({ours_s:.1f} s)")
    print(f"ratio vs plain loop: {ours_rate / base_rate:.1f}x   vs tuned: {ours_rate / tuned_rate:.1f}x")
    print("grouping accuracy on Loghub-2k ground truth, both with per-dataset Loghub settings "
          "(tuned Drain3 / LogPilot); the one-configuration figures are bench_templates.py's:")
    for name in systems():
        print(f"  {name:12s} {ga_base[name]:.3f} / {ga_ours[name]:.3f}")
    mean_b, mean_o = sum(ga_base.values()) / 16, sum(ga_ours.values()) / 16
    print(f"  {'mean':12s} {mean_b:.4f} / {mean_o:.4f}")
    print(json.dumps({"lines": n, "baseline_lines_per_s": round(base_rate), "tuned_lines_per_s": round(tuned_rate),
                      "logpilot_lines_per_s": round(ours_rate), "ratio": round(ours_rate / base_rate, 2),
                      "ratio_vs_tuned": round(ours_rate / tuned_rate, 2), "ga_baseline": round(mean_b, 4),
                      "ga_logpilot": round(mean_o, 4),
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))


if __name__ == "__main__":
    main()
