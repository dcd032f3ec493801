"""End to end: ``dagster dev`` (webserver + daemon) on loopback runs a UI-style backfill of two year partitions.

The backfill is launched through the webserver's GraphQL API, as the UI's backfill button does; the two years
run as separate runs, staging in parallel while the DuckDB writer pool lets one load at a time.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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
    env = {**os.environ, "LOGPILOT_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}
    log = open(tmp_path / "dagster_dev.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "dagster", "dev", "-w", str(REPO / "workspace.yaml"),
                             "-h", "127.0.0.1", "-p", str(port)], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
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
        yield port, home, tmp_path / "dagster_dev.log"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_ui_backfill_of_two_year_partitions(dagster_dev):
    port, home, log = dagster_dev
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
    assert all(r["status"] == "SUCCESS" for r in backfill["runs"]) and len(backfill["runs"]) >= 2
    con = duckdb.connect(str(home / "logs.duckdb"), read_only=True)
    try:
        years = dict(con.execute("SELECT year, count(*) FROM logs GROUP BY 1").fetchall())
    finally:
        con.close()
    assert set(years) == {2022, 2023} and min(years.values()) > 5_000
    assert "Could not set lock" not in log.read_text()
