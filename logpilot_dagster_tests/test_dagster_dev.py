"""End to end: `logpilot dev` (dagster webserver + daemon) on loopback runs a UI-style backfill of two years.

Started as `.venv/bin/logpilot dev --home H` with the venv's bin off PATH. The backfill is launched through the
webserver's GraphQL API, as the UI's backfill button does; the two years run as separate (in-process) runs,
staging in parallel while the DuckDB writer pool lets one load at a time, and each year gets its own
`line_accounting` result.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import requests

from logpilot_dagster.ingest.sample_data import write_sample_home
from logpilot_dagster.settings import SHIPPED_DATA

REPO = Path(__file__).resolve().parent.parent
YEARS = ["2022", "2023"]
LAUNCH = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}"""
STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status runs(limit: 20) { runId status } }
  }
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str, variables: dict) -> dict:
    response = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query, "variables": variables},
                             timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture
def dagster_dev(tmp_path):
    home, dagster_home = tmp_path / "home", tmp_path / "dagster_home"
    write_sample_home(home, total_lines=20_000, years=(2022, 2023))
    dagster_home.mkdir()
    shutil.copyfile(SHIPPED_DATA / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    port = free_port()
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env = {**os.environ, "PATH": path, "DAGSTER_HOME": str(dagster_home)}
    env.pop("LOGPILOT_HOME", None)
    log = open(tmp_path / "dagster_dev.log", "w")
    started = time.monotonic()
    proc = subprocess.Popen([os.path.join(venv_bin, "logpilot"), "dev", "--home", str(home), "--port", str(port)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, (tmp_path / "dagster_dev.log").read_text()[-3000:]
            time.sleep(1)
        print(f"logpilot dev answered after {time.monotonic() - started:.1f}s")
        yield port, home, dagster_home, tmp_path / "dagster_dev.log"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_ui_backfill_of_two_year_partitions(dagster_dev):
    port, home, dagster_home, log = dagster_dev
    selection = [{"path": [name]} for name in ("landing_files", "log_templates", "logs_parquet", "logs_table")]
    launched = graphql(port, LAUNCH, {"params": {"partitionNames": YEARS, "assetSelection": selection}})
    result = launched["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    deadline, status = time.monotonic() + 420, None
    while time.monotonic() < deadline:
        backfill = graphql(port, STATUS, {"id": result["backfillId"]})["partitionBackfillOrError"]
        status = backfill["status"]
        if status in ("COMPLETED", "COMPLETED_SUCCESS", "FAILED", "COMPLETED_FAILED", "CANCELED"):
            break
        time.sleep(3)
    assert status in ("COMPLETED", "COMPLETED_SUCCESS"), (status, backfill, log.read_text()[-4000:])
    assert all(r["status"] == "SUCCESS" for r in backfill["runs"]) and len(backfill["runs"]) == len(YEARS)
    con = duckdb.connect(str(home / "logs.duckdb"), read_only=True)
    try:
        years = dict(con.execute("SELECT year, count(*) FROM logs GROUP BY 1").fetchall())
    finally:
        con.close()
    assert set(years) == {2022, 2023} and min(years.values()) > 5_000
    text = log.read_text()
    assert "Could not set lock" not in text and "BetaWarning" not in text
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        records = instance.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION))
        evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in records]
    finally:
        instance.dispose()
    assert sorted((e.partition, e.passed) for e in evaluations if e.check_name == "line_accounting") == \
        [(year, True) for year in YEARS]
