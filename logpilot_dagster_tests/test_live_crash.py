"""Exactly-once under crashes: a worker subprocess killed with SIGKILL mid-stream, restarted, and SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import duckdb
import psutil
import pytest

from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.stream import LineProducer
from logpilot_dagster.storage.warehouse import connect
from logpilot_dagster_tests.broker_fixture import both_clients, recent, sample_lines

INGEST = [sys.executable, "-m", "logpilot_dagster.stream", "ingest"]
SERVICES = ("payments-api", "edge-gateway", "notification-worker")


def worker_env(paths, broker, batch_size: int) -> dict:
    return {**os.environ, "LOGPILOT_HOME": str(paths.home), "LOGPILOT_KAFKA_BOOTSTRAP": broker.bootstrap_servers,
            "LOGPILOT_KAFKA_TOPIC": broker.settings.topic, "LOGPILOT_INGEST_BATCH_SIZE": str(batch_size),
            "LOGPILOT_INGEST_MAX_LATENCY_S": "0.2", "LOGPILOT_KAFKA_CLIENT": broker.settings.client}


def produce_sample(broker, paths, per_service: int) -> int:
    with LineProducer(broker, SchemaRegistry.load(paths)) as producer:
        for i, service in enumerate(SERVICES):
            producer.send(service, sample_lines(service, per_service, recent(hours=3), seed=i))
    return per_service * len(SERVICES)


def stored_rows(paths) -> int:
    if not paths.db_path.exists():
        return 0
    with connect(paths.db_path, read_only=True) as con:
        try:
            return con.execute("SELECT count(*) FROM logs").fetchone()[0]
        except duckdb.CatalogException:
            return 0


def wait_for_commit(paths, proc: subprocess.Popen, rows_before: int, timeout_s: float = 60) -> None:
    """Until the worker has committed rows of its own."""
    deadline = time.monotonic() + timeout_s
    while stored_rows(paths) <= rows_before:
        assert proc.poll() is None, "the worker exited early"
        assert time.monotonic() < deadline, "the worker committed nothing"
        time.sleep(0.05)


@pytest.fixture
def start_worker():
    """Start ``ingest`` and return once it is consuming (its "ingesting ..." log line); killed at teardown."""
    started: list[subprocess.Popen] = []

    def start(env: dict) -> subprocess.Popen:
        proc = subprocess.Popen(INGEST, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(proc)
        for line in proc.stderr:
            if "ingesting" in line:
                return proc
        raise AssertionError(f"the worker exited with {proc.wait()}")

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@both_clients
def test_sigkill_mid_stream_then_restart_stores_every_record_exactly_once(broker, live_home, start_worker):
    produced = produce_sample(broker, live_home, per_service=1000)
    env = worker_env(live_home, broker, batch_size=5)  # hundreds of small transactions to interrupt
    rows_after_kill = [0]
    for extra_s in (0.0, 0.3, 0.6):
        proc = start_worker(env)
        wait_for_commit(live_home, proc, rows_after_kill[-1])
        time.sleep(extra_s)  # and let it go on for a while
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, "a stage process outlived the killed worker"
        rows_after_kill.append(stored_rows(live_home))
    assert rows_after_kill == sorted(set(rows_after_kill)) and rows_after_kill[-1] < produced

    final_env = worker_env(live_home, broker, batch_size=1000)  # batch size is free to change between runs
    done = subprocess.run(INGEST + ["--until-caught-up"], env=final_env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    assert stats["lag"] == 0 and stats["consumed"] == produced - rows_after_kill[-1]
    with connect(live_home.db_path, read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM logs").fetchone() == (produced, produced)
        assert con.execute("SELECT count(DISTINCT (source, source_offset)) FROM logs").fetchone()[0] == produced
        assert con.execute("SELECT sum(next_offset) FROM stream_offsets").fetchone()[0] == produced
        assert con.execute("SELECT sum(count) FROM templates").fetchone()[0] == produced
        assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0


def test_sigterm_flushes_and_exits_cleanly(broker, live_home, start_worker):
    produced = produce_sample(broker, live_home, per_service=1000)
    proc = start_worker(worker_env(live_home, broker, batch_size=20))
    wait_for_commit(live_home, proc, 0)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)

    assert proc.returncode == 0
    stats = json.loads(out.strip().splitlines()[-1])
    assert 0 < stats["consumed"] < produced
    with connect(live_home.db_path, read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM logs").fetchone()[0]
        offsets = con.execute("SELECT sum(next_offset) FROM stream_offsets").fetchone()[0]
    assert rows == stats["inserted"] == stats["consumed"] == offsets
