"""Check a held-out warehouse against what the generator wrote, so gold SQL run on it means the generated truth.

    uv run python data/golden_heldout/check_gold.py --home /tmp/heldout

Compares lines per service, year and level in ``logs`` and quarantined lines per year (of their landing path)
with ``truth.json``; exits non-zero on any difference.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import duckdb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True)
    home = Path(parser.parse_args().home)
    truth = json.loads((home / "truth.json").read_text(encoding="utf-8"))
    with duckdb.connect(str(home / "logs.duckdb"), read_only=True) as con:
        lines = {f"{s}|{y}|{lv}": n for s, y, lv, n in con.execute(
            "SELECT service, year(ts), level, count(*) FROM logs GROUP BY ALL").fetchall()}
        quarantined = {str(y): n for y, n in con.execute(
            "SELECT regexp_extract(source, '/(\\d{4})/', 1), count(*) FROM quarantine GROUP BY 1").fetchall()}
    problems = [f"{k}: warehouse {lines.get(k, 0)} != generated {v}" for k, v in truth["lines"].items()
                if lines.get(k, 0) != v]
    problems += [f"{k}: not generated" for k in lines.keys() - truth["lines"].keys()]
    if quarantined != truth["quarantined_by_year"]:
        problems.append(f"quarantine {quarantined} != generated {truth['quarantined_by_year']}")
    print("\n".join(problems) or f"warehouse matches truth.json: {sum(lines.values()):,} lines, "
          f"{sum(quarantined.values())} quarantined")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
