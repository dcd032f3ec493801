"""Build the held-out warehouse (see ``logpilot_dagster.agent.evaluation.heldout_data``) for ``data/golden_heldout``.

    LOGPILOT_FIRST_YEAR=2018 uv run python data/golden_heldout/build_warehouse.py --home /tmp/heldout
    uv run logpilot --home /tmp/heldout evaluate --golden data/golden_heldout

Writes the landing zone, ``sources.yaml`` and ``system_catalog.csv`` under the home, runs the real backfill
(Dagster, one run per year 2018-2020; the partitions must start at 2018, hence the variable) and keeps what was
generated in ``truth.json``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from logpilot_dagster.agent.evaluation.heldout_data import YEARS, write_landing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--lines", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=2018)
    args = parser.parse_args()
    if os.environ.get("LOGPILOT_FIRST_YEAR") != str(YEARS[0]):
        raise SystemExit(f"set LOGPILOT_FIRST_YEAR={YEARS[0]} so the years are partitions")
    from logpilot_dagster.cli import run_backfill, use_home

    paths = use_home(str(Path(args.home).resolve()))
    paths.ensure()
    truth = write_landing(paths.home, args.lines, args.seed)
    (paths.home / "truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True), encoding="utf-8")
    run_backfill(paths, list(YEARS), progress=False)


if __name__ == "__main__":
    main()
