"""The ingestion worker against a real embedded broker and a real DuckDB file."""

from __future__ import annotations

import gc
import json
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.ingest.sample_data import render_line
from logpilot_dagster.stream import CATCH_UP, REAL_TIME, IngestionWorker, LineProducer, run_ingestion
from logpilot_dagster.stream.worker import MIN_SPLIT
from logpilot_dagster.storage.warehouse import WarehouseLockedError, connect
from logpilot_dagster_tests.broker_fixture import recent, sample_lines


def produce(broker, paths, service: str, lines: list[bytes]) -> None:
    with LineProducer(broker, SchemaRegistry.load(paths)) as producer:
        producer.send(service, lines)


@contextmanager
def running_worker(settings, broker):
    """A worker running in a thread, with the messages it reports; stopped (as by SIGTERM) on exit."""
    messages: list[str] = []
    worker = IngestionWorker(settings, broker=broker, report=messages.append)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        yield worker, messages
    finally:
        worker.request_stop()
        thread.join()


def query(paths, sql: str):
    with connect(paths.db_path, read_only=True) as con:
        return con.execute(sql).fetchall()


def test_records_at_or_before_t1_are_skipped_and_never_doubled(broker, live_settings):
    paths = live_settings.paths
    start = recent(hours=2)
    produce(broker, paths, "payments-api", sample_lines("payments-api", 1000, start))
    t1 = start + timedelta(seconds=499)

    first = run_ingestion(live_settings, until_caught_up=True, t1=t1, broker=broker)
    again = run_ingestion(live_settings, until_caught_up=True, t1=t1, broker=broker)

    assert (first.consumed, first.inserted, first.skipped_before_t1, first.lag) == (1000, 500, 500, 0)
    assert (again.consumed, again.inserted) == (0, 0)
    [(rows, ids, oldest)] = query(paths, "SELECT count(*), count(DISTINCT event_id), min(ts) FROM logs")
    assert (rows, ids) == (500, 500) and oldest > t1
    assert query(paths, "SELECT sum(next_offset) FROM stream_offsets") == [(1000,)]


def test_catch_up_then_real_time(broker, live_settings):
    paths = live_settings.paths
    produce(broker, paths, "auth-service", sample_lines("auth-service", 3000, recent(hours=3)))
    with running_worker(live_settings, broker) as (worker, messages):
        _wait_for(lambda: worker.stats.consumed >= 3000)
        assert worker.stats.mode == REAL_TIME
        produce(broker, paths, "auth-service", sample_lines("auth-service", 50, recent(hours=0.01), seed=1))
        _wait_for(lambda: worker.stats.consumed >= 3050)
    assert f"mode: {CATCH_UP} -> {REAL_TIME}" in messages
    assert messages[-1].startswith("stopped: ") and worker.stats.inserted == 3050
    assert query(paths, "SELECT count(*), count(DISTINCT event_id) FROM logs") == [(3050, 3050)]
    assert query(paths, "SELECT sum(count) FROM templates WHERE service = 'auth-service'") == [(3050,)]


def test_batches_halve_near_the_head_so_the_last_one_is_small(broker, live_settings):
    settings = replace(live_settings, batch_size=20_000)
    produce(broker, settings.paths, "auth-service", sample_lines("auth-service", 30_000, recent(hours=3)))
    sizes: list[int] = []
    stats = IngestionWorker(settings, broker=broker, on_commit=lambda w: sizes.append(w.consumed)).run(
        until_caught_up=True)
    assert stats.consumed == sum(sizes) == 30_000
    assert sizes[0] == 15_000 and sizes == sorted(sizes, reverse=True) and sizes[-1] <= MIN_SPLIT


def test_the_heap_is_frozen_only_while_the_worker_runs(broker, live_settings):
    produce(broker, live_settings.paths, "auth-service", sample_lines("auth-service", 100, recent(hours=3)))
    frozen: list[int] = []
    IngestionWorker(live_settings, broker=broker, on_commit=lambda w: frozen.append(gc.get_freeze_count())).run(
        until_caught_up=True)
    assert frozen and min(frozen) > 0 and gc.get_freeze_count() == 0


def test_bad_records_are_quarantined_and_ingestion_goes_on(broker, live_settings):
    paths, topic = live_settings.paths, live_settings.broker.topic
    now = datetime.now(timezone.utc)
    now_ms = int(now.timestamp() * 1000)
    good = sample_lines("payments-api", 10, recent(hours=1))
    future_line = render_line("payments-api", now + timedelta(days=3), __import__("random").Random(1))[1].encode()
    bad = {  # value, key, record timestamp -> expected reason
        "empty_record": (b"", b"payments-api", now_ms),
        "not_utf8": (b"\xff\xfe not utf-8 \xc3\x28", b"payments-api", now_ms),
        "oversize_record": (b"x" * (70 * 1024), b"payments-api", now_ms),
        "event_time_out_of_range": (good[0], b"payments-api", now_ms + 3 * 86_400_000),
        "unknown_source": (b"BATCH 0001 started", b"legacy-batch", now_ms),
        "no_format_match": (b"this line has no header at all", b"payments-api", now_ms),
    }
    producer = broker.producer()
    offsets = {}
    for reason, (value, key, ts) in bad.items():
        meta = producer.send(topic, key=key, value=value, timestamp_ms=ts).get(timeout=10)
        offsets[reason] = (f"{topic}/{meta.partition}", meta.offset)
    before_2000 = producer.send(topic, key=b"payments-api", value=good[1], timestamp_ms=946_684_799_000).get(10)
    parsed_future = producer.send(topic, key=b"payments-api", value=future_line, timestamp_ms=now_ms).get(10)
    producer.close()
    produce(broker, paths, "payments-api", good)

    stats = run_ingestion(live_settings, until_caught_up=True, broker=broker)

    assert (stats.consumed, stats.quarantined, stats.inserted) == (18, 8, 10)
    rows = query(paths, "SELECT reason, source, source_offset FROM quarantine")
    found = {(reason, source, offset) for reason, source, offset in rows}
    for reason, (source, offset) in offsets.items():
        assert (reason, source, offset) in found
    assert ("event_time_out_of_range", f"{topic}/{before_2000.partition}", before_2000.offset) in found
    assert ("event_time_out_of_range", f"{topic}/{parsed_future.partition}", parsed_future.offset) in found
    assert query(paths, "SELECT raw FROM quarantine WHERE reason = 'not_utf8'") == [("\ufffd\ufffd not utf-8 \ufffd(",)]
    assert query(paths, "SELECT count(*) FROM logs") == [(10,)]
    # Lines that no known format covers also wait for discovery, under the source name they came with.
    queued = query(paths, "SELECT source_name, reason, source, source_offset, raw FROM discovery_queue ORDER BY 2")
    assert queued == [("payments-api", "no_format_match", *offsets["no_format_match"], "this line has no header at all"),
                      ("legacy-batch", "unknown_source", *offsets["unknown_source"], "BATCH 0001 started")]


@pytest.mark.parametrize("new_records", [200, 500])
def test_broker_that_lost_its_log_is_read_again_from_the_start(broker, live_settings, new_records):
    """A memory broker restarts empty and hands out offsets 0.. again: new records must not be mistaken for
    (or collide with) the ones already stored, whether its new log is shorter than our stored offset or has
    already grown past it."""
    paths = live_settings.paths
    produce(broker, paths, "inventory-db", sample_lines("inventory-db", 300, recent(hours=2)))
    assert run_ingestion(live_settings, until_caught_up=True, broker=broker).inserted == 300
    broker.kill()
    broker.start()  # same port, empty log
    produce(broker, paths, "inventory-db", sample_lines("inventory-db", new_records, recent(hours=1), seed=2))

    stats = run_ingestion(live_settings, until_caught_up=True, broker=broker)

    assert (stats.consumed, stats.inserted) == (new_records, new_records)
    total = 300 + new_records
    assert query(paths, "SELECT count(*), count(DISTINCT event_id) FROM logs") == [(total, total)]


def _wait_for(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("new_records", [200, 500])
def test_running_worker_rides_out_a_broker_restart(broker, live_settings, new_records):
    """The broker loses its log under a running worker; its new log is shorter than our position, or has
    already grown past it by the time the worker looks. Which check notices first (the worker's own every
    report interval, or the Kafka client seeing the topic recreated) depends on timing, so the test holds the
    worker to the outcome: every record exactly once, and it keeps consuming afterwards."""
    paths = live_settings.paths
    produce(broker, paths, "search-indexer", sample_lines("search-indexer", 300, recent(hours=2)))
    with running_worker(live_settings, broker) as (worker, messages):
        _wait_for(lambda: worker.stats.consumed >= 300)
        broker.kill()
        broker.start()  # same port, empty log: offsets start at 0 again
        produce(broker, paths, "search-indexer",
                sample_lines("search-indexer", new_records, recent(hours=1), seed=3))
        total = 300 + new_records
        _wait_for(lambda: query_when_free(paths, "SELECT count(*) FROM logs") == [(total,)], timeout_s=180)
        produce(broker, paths, "search-indexer", sample_lines("search-indexer", 50, recent(hours=0.5), seed=4))
        _wait_for(lambda: query_when_free(paths, "SELECT count(*) FROM logs") == [(total + 50,)], timeout_s=180)
        assert not any(m.startswith(("stopped", "done")) for m in messages)
    assert query(paths, "SELECT count(*), count(DISTINCT event_id) FROM logs") == [(total + 50, total + 50)]


def query_when_free(paths, sql: str):
    """``query`` without waiting for a busy writer: None while the worker holds the file."""
    try:
        with connect(paths.db_path, read_only=True, wait_s=0.5) as con:
            return con.execute(sql).fetchall()
    except WarehouseLockedError:
        return None


def test_replayed_records_are_not_stored_twice(broker, live_settings):
    """With the stored offsets lost (and another consumer group), every record comes again: the batches start
    below the offsets stored in ``logs``, so only new event ids go in, none here and the template counts stay those of one copy."""
    paths = live_settings.paths
    produce(broker, paths, "payments-api", sample_lines("payments-api", 300, recent(hours=1)))
    assert run_ingestion(live_settings, until_caught_up=True, broker=broker).inserted == 300
    counts = query(paths, "SELECT template_id, count FROM templates ORDER BY 1")
    with connect(paths.db_path) as con:
        con.execute("DELETE FROM stream_offsets")

    replay = run_ingestion(replace(live_settings, group_id="replay"), until_caught_up=True, broker=broker)

    assert (replay.consumed, replay.inserted) == (300, 0)
    assert query(paths, "SELECT count(*), count(DISTINCT event_id) FROM logs") == [(300, 300)]
    assert query(paths, "SELECT template_id, count FROM templates ORDER BY 1") == counts
    assert sum(c for _, c in counts) == 300


def _auth_line(ts: datetime, msg: str) -> bytes:
    return json.dumps({"ts": f"{ts:%Y-%m-%dT%H:%M:%S.%f}Z", "level": "info", "logger": "auth.login",
                       "msg": msg}).encode()


def test_year_follows_the_event_time_when_the_record_time_is_arrival(broker, live_settings):
    """Vector and Fluent Bit stamp records with their arrival time: last year's lines arriving now still get
    last year's ``logs.year``."""
    paths, topic = live_settings.paths, live_settings.broker.topic
    arrival_ms = int(time.time() * 1000)
    last_year = datetime.now(timezone.utc).year - 1
    producer = broker.producer()
    for i in range(20):
        event = datetime(last_year, 12, 31, 23, 59, 50) + timedelta(seconds=i)  # across New Year
        producer.send(topic, key=b"auth-service", value=_auth_line(event, f"login ok for user {i}"),
                      timestamp_ms=arrival_ms)
    producer.close()

    assert run_ingestion(live_settings, until_caught_up=True, broker=broker).inserted == 20
    assert query(paths, "SELECT year, year(ts), count(*) FROM logs GROUP BY ALL ORDER BY ALL") == [
        (last_year, last_year, 10), (last_year + 1, last_year + 1, 10)]


def test_t1_is_compared_at_the_timestamps_full_precision(broker, live_settings):
    """T1 has microseconds; a line 0.5 ms after it, in the same millisecond, is new; one at or before it is not."""
    t1 = recent(hours=2) + timedelta(microseconds=200)
    lines = {"after": t1 + timedelta(microseconds=500), "at": t1, "before": t1 - timedelta(microseconds=100)}
    produce(broker, live_settings.paths, "auth-service", [_auth_line(ts, f"session {name}") for name, ts in lines.items()])

    stats = run_ingestion(live_settings, until_caught_up=True, t1=t1, broker=broker)

    assert (stats.inserted, stats.skipped_before_t1) == (1, 2)
    assert query(live_settings.paths, "SELECT ts FROM logs") == [(lines["after"],)]
