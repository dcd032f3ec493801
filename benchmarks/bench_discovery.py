"""Schema discovery on Loghub-2k (https://github.com/logpai/loghub): given only each system's raw ``.log`` file
(no ``formats.json``), propose a rule from half of the lines, validate it on the other half, then parse every
line with it and compare the extracted content with the ground-truth ``Content`` of ``*_structured*.csv``.

    uv run python benchmarks/bench_discovery.py [--samples N] [-v] [System ...]

``--samples N`` discovers from the first N lines only (default: all 2000) and still scores every line. Prints
per system: the rule's validation scores, the share of lines whose content equals ``Content`` exactly,
the share of lines with a parsed timestamp, and the time taken.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loghub import LOGHUB_DIR, ground_truth  # noqa: E402

from logpilot_dagster.discovery.propose import discover  # noqa: E402

SYSTEMS = ("Android", "Apache", "BGL", "HDFS", "HPC", "Hadoop", "HealthApp", "Linux", "Mac", "OpenSSH", "OpenStack",
           "Proxifier", "Spark", "Thunderbird", "Windows", "Zookeeper")


def raw_lines(name: str) -> list[str]:
    text = (LOGHUB_DIR / name / f"{name}_2k.log").read_text(encoding="utf-8")
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


def run(name: str, samples: int | None = None) -> dict:
    lines = raw_lines(name)
    truth = [row["Content"] for row in ground_truth(name)]
    start = time.perf_counter()
    found = discover(lines[:samples], year=2000)
    seconds = time.perf_counter() - start
    row = {"system": name, "accepted": found.accepted, "seconds": seconds, "content": 0.0, "timestamp": 0.0,
           "match": found.validation.scores.get("match_rate", 0.0) if found.validation else 0.0,
           "rule": found.candidate.format if found.candidate else found.explain(),
           "layout": found.candidate.ts_layout if found.candidate else None}
    if found.accepted:
        parsed = found.candidate.header_format().parse(pa.array(lines), 2000)
        content = parsed.content.to_pylist()
        row["content"] = sum(c == t for c, t in zip(content, truth)) / len(truth)
        row["timestamp"] = (pc.sum(pc.is_valid(parsed.ts)).as_py() or 0) / len(lines)
    return row


def main(names: list[str], samples: int | None) -> None:
    rows = [run(name, samples) for name in names or SYSTEMS]
    print(f"discovery from {samples or 'all'} lines per system, scored on all lines")
    print(f"{'system':<12} {'accepted':>8} {'held-out match':>14} {'content = GT':>12} {'ts parsed':>9} "
          f"{'s':>5}  time layout")
    for r in rows:
        print(f"{r['system']:<12} {str(r['accepted']):>8} {r['match']:>14.2%} {r['content']:>12.2%} "
              f"{r['timestamp']:>9.2%} {r['seconds']:>5.2f}  {r['layout']}")
    mean = sum(r["content"] for r in rows) / len(rows)
    print(f"{'mean':<12} {sum(r['accepted'] for r in rows):>5}/{len(rows):<2} {'':>14} {mean:>12.2%} "
          f"{sum(r['timestamp'] for r in rows) / len(rows):>9.2%} {sum(r['seconds'] for r in rows):>5.1f}")
    if "-v" in sys.argv:
        for r in rows:
            print(f"{r['system']}: {r['rule']}")


if __name__ == "__main__":
    args = sys.argv[1:]
    n = int(args[args.index("--samples") + 1]) if "--samples" in args else None
    main([a for a in args if not a.startswith("-") and a != str(n)], n)
