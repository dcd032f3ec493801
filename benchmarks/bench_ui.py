"""UI backfill vs `logpilot backfill`, one year each, measured side by side; then two years at once in the UI.

Baseline: the CLI, `logpilot backfill --years Y --quiet` on a fresh copy of the same home, timed from the
command's start to the year's run succeeding (the CLI then also runs `t1_watermark`, the vectors, the runbook
index and the template series in a second run: printed apart, not in the ratio). The UI side is the job page's
backfill button: GraphQL `launchPartitionBackfill` of the `bootstrap` job for year Y against `logpilot dev`
(webserver + daemon, already up), timed from the mutation to the run succeeding. Both cover the same steps:
landing_files, staged_year (log_templates + logs_parquet), logs_table (+ quarantine), line_accounting.

Then a backfill of two more years at once: both runs' spans, and each DuckDB load (pool `duckdb_writer`,
limit 1) from the event log: when it could start (its staging done), started and ended, so the wait on the
pool and any idle slot time show.

    python benchmarks/bench_ui.py --lines 300000     # sample data over 2022-2024, ~100k lines a year
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from logpilot_dagster.ingest.sample_data import write_sample_home  # noqa: E402
from logpilot_dagster_tests.dagster_ui import REPO, logpilot_dev  # noqa: E402

YEARS = (2022, 2023, 2024)
STEPS = (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS)


def run_timeline(instance: dg.DagsterInstance, run_id: str) -> dict:
    """Wall-clock timestamps of one run: created, launched, worker up, each step's start/end, success."""
    record = instance.get_run_record_by_id(run_id)
    out = {"created": record.create_timestamp.timestamp(), "steps": {}}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.RUN_STARTING:
            out["launched"] = entry.timestamp
        elif event.event_type == dg.DagsterEventType.RUN_START:
            out["worker_up"] = entry.timestamp
        elif event.event_type == dg.DagsterEventType.RUN_SUCCESS:
            out["success"] = entry.timestamp
        elif event.event_type in STEPS:
            out["steps"].setdefault(event.step_key, {})[event.event_type.value] = entry.timestamp
    return out


def steps_line(timeline: dict) -> str:
    return ", ".join(f"{key} {s['STEP_SUCCESS'] - s['STEP_START']:.1f}s" for key, s in timeline["steps"].items()
                     if "STEP_SUCCESS" in s)


def ui_one_year(server, instance, year: int) -> tuple[float, dict]:
    t0 = time.time()
    backfill = server.launch_job_backfill("bootstrap", [str(year)])
    runs = server.wait_for_runs(backfill, 1)
    assert [r["status"] for r in runs] == ["SUCCESS"], runs
    timeline = run_timeline(instance, runs[0]["runId"])
    return timeline["success"] - t0, {"t0": t0, **timeline}


def wait_until_idle(instance, timeout: float = 300) -> None:
    """Let the automation sensor's follow-up run (t1_watermark, vectors...) start and end: a quiet machine."""
    busy = dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
                                   dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED])
    deadline, runs = time.monotonic() + timeout, len(instance.get_runs())
    while time.monotonic() < deadline:
        if len(instance.get_runs()) > runs and not instance.get_runs(filters=busy):
            return
        time.sleep(1)
    print("  (the automation sensor's follow-up run did not end in time)")


def cli_one_year(home: Path, year: int) -> tuple[float, float, dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("LOGPILOT_HOME", "DAGSTER_HOME")}
    t0 = time.time()
    subprocess.run([str(Path(sys.executable).parent / "logpilot"), "--home", str(home), "backfill",
                    "--years", str(year), "--quiet"], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    total = time.time() - t0
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        run = next(r for r in instance.get_runs() if r.tags.get("dagster/partition") == str(year))
        timeline = run_timeline(instance, run.run_id)
    return timeline["success"] - t0, total, {"t0": t0, **timeline}


def breakdown(t: dict) -> str:
    first_step = min(s["STEP_START"] for s in t["steps"].values())
    parts = [("to run created", t["created"] - t["t0"])]
    if "launched" in t:
        parts += [("queued", t["launched"] - t["created"]), ("worker start", t["worker_up"] - t["launched"])]
    else:
        parts += [("process start + imports", t["worker_up"] - t["created"])]
    parts += [("to first step", first_step - t["worker_up"]), ("steps", t["success"] - first_step)]
    return "; ".join(f"{name} {seconds:.1f}s" for name, seconds in parts)


def two_years(server, instance, years: list[int]) -> None:
    t0 = time.time()
    backfill = server.launch_job_backfill("bootstrap", [str(y) for y in years])
    runs = server.wait_for_runs(backfill, len(years))
    assert sorted(r["status"] for r in runs) == ["SUCCESS"] * len(years), runs
    timelines = sorted((run_timeline(instance, r["runId"]) for r in runs), key=lambda t: t["worker_up"])
    (a, b) = timelines
    overlap = min(a["success"], b["success"]) - max(a["worker_up"], b["worker_up"])
    print(f"two years {years} at once: launch -> both done {max(a['success'], b['success']) - t0:.1f}s; "
          f"runs overlapped {max(overlap, 0):.1f}s"
          f" ({'both ran at once' if overlap > 0 else 'they did NOT run at once'})")
    for t in timelines:
        print("  run: " + ", ".join(f"{k} {t[k] - t0:.1f}s" for k in ("created", "launched", "worker_up", "success")
                                    if k in t))
    loads = sorted(((t["steps"]["logs_table"], t["steps"]["staged_year"]["STEP_SUCCESS"]) for t in timelines),
                   key=lambda load: load[0]["STEP_START"])
    for (load, ready), name in zip(loads, ("first", "second")):
        print(f"  {name} load: ready {ready - t0:.1f}s, started {load['STEP_START'] - t0:.1f}s "
              f"(waited on the pool {load['STEP_START'] - ready:.1f}s), ended {load['STEP_SUCCESS'] - t0:.1f}s")
    (first, _), (second, second_ready) = loads
    gap = second["STEP_START"] - max(first["STEP_SUCCESS"], second_ready)
    print(f"  slot idle while the second load waited: {max(gap, 0):.1f}s; loads overlapped: "
          f"{'yes (pool NOT enforced)' if second['STEP_START'] < first['STEP_SUCCESS'] else 'no'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=300_000, help="sample lines over 2022-2024")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} at start; {args.lines:,} sample lines over {YEARS}")
    with tempfile.TemporaryDirectory(prefix="bench_ui_") as tmp:
        ui_home, cli_home = Path(tmp) / "ui", Path(tmp) / "cli"
        write_sample_home(ui_home, total_lines=args.lines, years=YEARS)
        shutil.copytree(ui_home, cli_home)
        year = YEARS[0]
        with logpilot_dev(ui_home, Path(tmp) / "dev.log") as server, \
                dg.DagsterInstance.from_config(str(ui_home / "dagster_home")) as instance:
            print(f"`logpilot dev` ready (code location loaded) in {server.ready_s:.1f}s wall, "
                  f"{server.ready_cpu_s:.1f} CPU s (all its processes)")
            ui_s, ui = ui_one_year(server, instance, year)
            wait_until_idle(instance)
            cli_s, cli_total, cli = cli_one_year(cli_home, year)
            print(f"one year ({year}):")
            print(f"  UI  (launchPartitionBackfill -> run success): {ui_s:5.1f}s  [{breakdown(ui)}]")
            print(f"  CLI (`logpilot backfill` -> the year's run success): {cli_s:5.1f}s  [{breakdown(cli)}]"
                  f"  (whole command with t1/vectors/runbooks/series: {cli_total:.1f}s)")
            print(f"  steps UI: {steps_line(ui)}\n  steps CLI: {steps_line(cli)}")
            print(f"  ratio UI / CLI: {ui_s / cli_s:.2f}x (target <= 1.3x)")
            two_years(server, instance, list(YEARS[1:]))
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
