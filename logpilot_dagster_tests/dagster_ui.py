"""Drive `logpilot dev` (webserver + daemon) on loopback as the UI does: start it, launch backfills over GraphQL.

Shared by `test_dagster_dev.py` and `benchmarks/bench_ui.py`. Started as `.venv/bin/logpilot dev --home H`
with the venv's bin off PATH; the UI's backfill button is GraphQL `launchPartitionBackfill`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
REPOSITORY = {"repositoryLocationName": "logpilot", "repositoryName": "__repository__"}
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
    ... on PartitionBackfill { status runs(limit: 20) { runId status creationTime startTime endTime } }
  }
}"""
LOCATION = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
DONE = ("COMPLETED", "COMPLETED_SUCCESS", "FAILED", "COMPLETED_FAILED", "CANCELED")


def session_cpu_seconds(sid: int) -> float:
    """User + system CPU seconds of session ``sid``: its live processes and the children they reaped (``/proc``)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # after the name: state ppid pgrp session ... utime stime cutime cstime (11-14)
            total += sum(int(f) for f in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DevServer:
    port: int
    log: Path
    ready_s: float  # Popen → the webserver answers with the code location loaded
    ready_cpu_s: float  # CPU seconds the whole `logpilot dev` process tree had used by then


    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(f"http://127.0.0.1:{self.port}/graphql",
                                 json={"query": query, "variables": variables or {}}, timeout=30)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def launch_job_backfill(self, job: str, partitions: list[str]) -> str:
        """The job page's backfill button: one backfill of `job` over `partitions`; returns its id."""
        params = {"selector": {"partitionSetName": f"{job}_partition_set", "repositorySelector": REPOSITORY},
                  "partitionNames": partitions}
        result = self.graphql(LAUNCH, {"params": params})["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        return result["backfillId"]

    def wait_for_runs(self, backfill_id: str, count: int, timeout: float = 420) -> list[dict]:
        """Poll until the backfill has `count` runs, all finished (or the backfill ended); returns the runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            backfill = self.graphql(STATUS, {"id": backfill_id})["partitionBackfillOrError"]
            runs = backfill["runs"]
            finished = len(runs) >= count and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs)
            if finished or backfill["status"] in ("FAILED", "COMPLETED_FAILED", "CANCELED"):
                return runs
            time.sleep(0.25)
        raise TimeoutError(f"backfill {backfill_id}: {backfill}\n{self.log.read_text()[-4000:]}")


@contextmanager
def logpilot_dev(home: Path, log: Path, timeout: float = 180) -> Iterator[DevServer]:
    """`.venv/bin/logpilot dev --home HOME` on a free loopback port, stopped (whole process group) afterwards."""
    port = free_port()
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env = {**os.environ, "PATH": path}
    env.pop("LOGPILOT_HOME", None)
    env.pop("DAGSTER_HOME", None)
    out = open(log, "w")
    started = time.monotonic()
    proc = subprocess.Popen([os.path.join(venv_bin, "logpilot"), "dev", "--home", str(home), "--port", str(port)],
                            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        server = DevServer(port, log, 0.0, 0.0)
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                entries = server.graphql(LOCATION)["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.25)
        server.ready_s = time.monotonic() - started
        server.ready_cpu_s = session_cpu_seconds(proc.pid)
        yield server
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.close()
