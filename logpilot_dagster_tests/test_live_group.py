"""Live ingestion by a consumer group: three ``logpilot ingest --group`` members share the topic's partitions; one
is killed with SIGKILL mid-stream, the group gives its partitions to the others, and every record is stored
exactly once (positions come from ``stream_offsets``, committed with the rows, never from the group's offsets)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.ingest.sample_data import source_specs
from logpilot_dagster.ingest.sources import write_sources
from logpilot_dagster.storage.profile import is_lake
from logpilot_dagster.storage.warehouse import connect
from logpilot_dagster.stream import LineProducer
from logpilot_dagster_tests.broker_fixture import recent, sample_lines
from logpilot_dagster_tests.test_live_crash import worker_env

INGEST = [sys.executable, "-m", "logpilot_dagster.stream", "ingest", "--group", "logpilot-test"]
ASSIGNED = re.compile(r"assigned partitions \[([0-9, ]*)\]")


def produce_all_services(broker, paths, per_service: int, hours_ago: int = 3) -> int:
    services = [spec.name for spec in source_specs()]
    with LineProducer(broker, SchemaRegistry.load(paths)) as producer:
        for i, service in enumerate(services):
            producer.send(service, sample_lines(service, per_service, recent(hours=hours_ago), seed=i + 10 * hours_ago))
    return per_service * len(services)


def owned(log_path) -> list[int]:
    """The partitions a member was last assigned, from its log."""
    found = ASSIGNED.findall(log_path.read_text())
    return [int(p) for p in found[-1].split(",") if p.strip()] if found else []


def _scalar(paths, sql: str) -> int:
    """One number from the warehouse of either profile; 0 before the worker created its tables."""
    if not is_lake() and not paths.db_path.exists():
        return 0
    try:
        with connect(paths.db_path, read_only=True) as con:
            return con.execute(sql).fetchone()[0]
    except (duckdb.CatalogException, duckdb.InvalidInputException):  # no table yet; no lake yet (read-only)
        return 0


def stored_rows(paths) -> int:
    return _scalar(paths, "SELECT count(*) FROM logs")


def committed_offsets(paths, partitions: list[int]) -> int:
    """Records of these partitions already stored (their next offsets in ``stream_offsets``)."""
    return _scalar(paths, 'SELECT coalesce(sum(next_offset), 0) FROM stream_offsets WHERE "partition" IN '
                          f"({', '.join(map(str, partitions))})")


def consumed(log_path) -> int:
    """What a member consumed in all, from its last summary line."""
    return int(re.findall(r"consumed=(\d+)", log_path.read_text())[-1])


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


@pytest.fixture(params=["embedded", pytest.param("lake", marks=pytest.mark.lake)])
def group_home(request):
    """The members' home: the embedded DuckDB file (they take turns on it) or the lake (they write at once)."""
    paths = request.getfixturevalue("live_home" if request.param == "embedded" else "lake_home")
    write_sources(paths.sources_file, source_specs())
    return paths


@pytest.fixture
def members(tmp_path):
    """Start group members (stderr to a log file each); killed at teardown."""
    started: list[subprocess.Popen] = []

    def start(env: dict, name: str) -> tuple[subprocess.Popen, os.PathLike]:
        log = tmp_path / f"{name}.log"
        with open(log, "w") as fh:
            proc = subprocess.Popen(INGEST, env=env, stdout=subprocess.DEVNULL, stderr=fh, text=True)
        started.append(proc)
        return proc, log

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_killed_member_hands_its_partitions_over_and_nothing_is_lost_or_doubled(broker, group_home, members):
    live_home = group_home
    produced = produce_all_services(broker, live_home, per_service=400)
    env = worker_env(live_home, broker, batch_size=100)
    group = {name: members(env, name) for name in ("m1", "m2", "m3")}
    logs = {name: log for name, (_, log) in group.items()}
    # the group settles with every partition owned by someone
    wait_until(lambda: sorted(sum((owned(log) for log in logs.values()), [])) == [0, 1, 2], 120,
               "the group never assigned all three partitions")
    victim = next(name for name, log in logs.items() if owned(log))
    lost_partitions = owned(logs[victim])
    wait_until(lambda: committed_offsets(live_home, lost_partitions) > 0, 60, "the victim committed nothing")
    group[victim][0].send_signal(signal.SIGKILL)
    group[victim][0].wait()
    by_victim = committed_offsets(live_home, lost_partitions)
    produced += produce_all_services(broker, live_home, per_service=400, hours_ago=2)  # the victim never sees these

    survivors = {name: proc for name, (proc, _) in group.items() if name != victim}
    wait_until(lambda: stored_rows(live_home) >= produced, 180, "the survivors never caught up")
    for proc in survivors.values():
        assert proc.poll() is None, "a survivor died"
        proc.send_signal(signal.SIGTERM)
    for proc in survivors.values():
        assert proc.wait(60) == 0

    taken_over = sorted(sum((owned(logs[name]) for name in survivors), []))
    assert taken_over == [0, 1, 2] and set(lost_partitions) <= set(taken_over)
    # the survivors started the victim's partitions exactly after its last stored record: nothing read twice
    assert sum(consumed(logs[name]) for name in survivors) == produced - by_victim
    with connect(live_home.db_path, read_only=True) as con:
        [(victims_records,)] = con.execute(
            "SELECT count(*) FROM logs WHERE source IN "
            f"({', '.join(repr(f'{broker.settings.topic}/{p}') for p in lost_partitions)})").fetchall()
        assert 0 < by_victim < victims_records, "killed before or after its partitions' stream, not mid-stream"
        assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM logs").fetchone() == (produced, produced)
        assert con.execute("SELECT sum(next_offset) FROM stream_offsets").fetchone()[0] == produced
        assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0
