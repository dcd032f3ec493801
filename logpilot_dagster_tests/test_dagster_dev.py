"""End to end: `logpilot dev` (dagster webserver + daemon) on loopback runs the UI's backfills of the `bootstrap` job.

Started as `.venv/bin/logpilot dev --home H` with the venv's bin off PATH (`dagster_ui.logpilot_dev`); backfills
are launched through the webserver's GraphQL API, as the job page's backfill button does. One server serves both
tests: one year makes one run and one `line_accounting` result for that partition; two years run as separate
(in-process) runs whose DuckDB loads take turns on the `duckdb_writer` pool.
"""

import re

import dagster as dg
import duckdb
import pytest

from logpilot_dagster.ingest.sample_data import write_sample_home
from logpilot_dagster_tests.dagster_ui import logpilot_dev

#: what start-up and the runs must not print: Dagster's lifecycle warnings (`dagster dev` printed a
#: SupersessionWarning) and Python's own
WARNINGS = re.compile(r"\w*(Supersession|Beta|Preview|Deprecation|User|Future|Runtime)Warning")


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dagster_dev")
    home = tmp / "home"
    write_sample_home(home, total_lines=24_000, years=(2022, 2023, 2024))
    with logpilot_dev(home, tmp / "dagster_dev.log") as server:
        print(f"logpilot dev ready (code location loaded) after {server.ready_s:.1f}s")
        yield server, home


def _events(home, event_type: dg.DagsterEventType) -> list[dg.EventLogEntry]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(home / "dagster_home"))  # the shipped dagster.yaml's storage reads it
        with dg.DagsterInstance.get() as instance:
            return [entry for run in instance.get_runs()
                    for entry in instance.all_logs(run.run_id, of_type=event_type)]


def _accounting(home) -> list[tuple[str, bool]]:
    evaluations = [entry.dagster_event.event_specific_data
                   for entry in _events(home, dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
    return sorted((e.partition, e.passed) for e in evaluations if e.check_name == "line_accounting")


def _rows_by_year(home) -> dict[int, int]:
    con = duckdb.connect(str(home / "logs.duckdb"), read_only=True)
    try:
        return dict(con.execute("SELECT year, count(*) FROM logs GROUP BY 1").fetchall())
    finally:
        con.close()


def test_ui_backfill_of_one_year_is_one_run_with_its_check(dev_server):
    server, home = dev_server
    runs = server.wait_for_runs(server.launch_job_backfill("bootstrap", ["2022"]), 1)
    assert [r["status"] for r in runs] == ["SUCCESS"], (runs, server.log.read_text()[-4000:])
    assert set(_rows_by_year(home)) == {2022}
    assert _accounting(home) == [("2022", True)]
    text = server.log.read_text()
    assert not WARNINGS.findall(text), WARNINGS.findall(text)
    assert "Could not set lock" not in text


def test_ui_backfill_of_two_years_loads_one_at_a_time(dev_server):
    server, home = dev_server
    runs = server.wait_for_runs(server.launch_job_backfill("bootstrap", ["2023", "2024"]), 2)
    assert sorted(r["status"] for r in runs) == ["SUCCESS", "SUCCESS"], (runs, server.log.read_text()[-4000:])
    years = _rows_by_year(home)
    assert set(years) == {2022, 2023, 2024} and min(years.values()) > 5_000
    assert _accounting(home) == [("2022", True), ("2023", True), ("2024", True)]
    # a load spans its step's start to its last materialization: Dagster frees the slot while it handles the
    # step's success, so the other run's STEP_START may be stored just before that STEP_SUCCESS
    loads = {}
    for event_type in (dg.DagsterEventType.STEP_START, dg.DagsterEventType.ASSET_MATERIALIZATION):
        for entry in _events(home, event_type):
            if entry.step_key == "logs_table" and entry.run_id in {r["runId"] for r in runs}:
                loads.setdefault(entry.run_id, []).append(entry.timestamp)
    (start_a, *_, end_a), (start_b, *_, end_b) = sorted(sorted(span) for span in loads.values())
    assert end_a <= start_b, "the two loads held the duckdb_writer pool (limit 1) at the same time"
    assert not WARNINGS.findall(server.log.read_text())
