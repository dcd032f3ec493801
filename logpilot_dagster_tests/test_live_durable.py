"""The durable embedded buffer: tansu on SeaweedFS keeps what it buffered across a restart, and the worker follows
it to another port; a memory broker that restarts loses its log, and the worker says how many offsets."""

from __future__ import annotations

import pytest

from logpilot_dagster.broker import EmbeddedBroker, announce_file
from logpilot_dagster.broker.ports import free_port
from logpilot_dagster.stream import run_ingestion
from logpilot_dagster.stream import live_state
from logpilot_dagster_tests.broker_fixture import both_clients, recent, sample_lines
from logpilot_dagster_tests.test_live_worker import _wait_for, produce, query, query_when_free, running_worker

A, B, C = 600, 900, 300  # stored before the restart, buffered and unread across it, produced after it


@both_clients
@pytest.mark.parametrize("kind", ["durable", "memory"])
def test_broker_restarted_mid_buffer(kind, request, live_settings):
    """A is stored; B waits unread in the broker (a worker looked at the head and stopped) when it is killed and
    comes back on another port; C follows. Durable: A+B+C, nothing lost. Memory: B is gone, and counted."""
    broker = request.getfixturevalue("durable_broker" if kind == "durable" else "broker")
    paths = live_settings.paths
    produce(broker, paths, "payments-api", sample_lines("payments-api", A, recent(hours=3)))
    assert run_ingestion(live_settings, until_caught_up=True, broker=broker).inserted == A
    produce(broker, paths, "payments-api", sample_lines("payments-api", B, recent(hours=2), seed=1))
    assert run_ingestion(live_settings, max_seconds=0, broker=broker).consumed == 0
    broker.kill()
    broker.port = free_port()
    broker.start()
    produce(broker, paths, "payments-api", sample_lines("payments-api", C, recent(hours=1), seed=2))

    messages: list[str] = []
    stats = run_ingestion(live_settings, until_caught_up=True, broker=broker, report=messages.append)

    stored = A + B + C if kind == "durable" else A + C
    assert (stats.inserted, stats.lost_offsets) == ((B + C, 0) if kind == "durable" else (C, B))
    assert query(paths, "SELECT count(*), count(DISTINCT event_id) FROM logs") == [(stored, stored)]
    if kind == "memory":
        assert any("of the broker's previous log could not be read" in m for m in messages)
        assert live_state.read(live_state.state_file(paths.state_dir))["lost_offsets"] == B


@both_clients
def test_running_worker_follows_the_broker_to_another_port(seaweed, live_settings):
    """The worker finds the broker through ``broker.json`` only; the broker dies with records unread and comes
    back on another port with its log."""
    paths = live_settings.paths
    broker = EmbeddedBroker(live_settings.broker, store=seaweed, bucket="follow",
                            announce_file=announce_file(paths.state_dir)).start()
    try:
        produce(broker, paths, "auth-service", sample_lines("auth-service", A, recent(hours=2)))
        with running_worker(live_settings, None) as (worker, messages):
            _wait_for(lambda: worker.stats.consumed >= A)
            broker.kill()
            broker.port = free_port()
            broker.start()
            produce(broker, paths, "auth-service", sample_lines("auth-service", B, recent(hours=1), seed=1))
            _wait_for(lambda: query_when_free(paths, "SELECT count(*) FROM logs") == [(A + B,)])
        assert any(f"to {broker.bootstrap_servers}: reconnecting" in m for m in messages)
        assert worker.stats.lost_offsets == 0
        assert query(paths, "SELECT count(*), count(DISTINCT event_id) FROM logs") == [(A + B, A + B)]
    finally:
        broker.stop()

