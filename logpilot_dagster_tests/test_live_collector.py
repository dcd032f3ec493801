"""The collector: tailing across rotation and truncation, resuming from its state file, stdin; real broker."""

from __future__ import annotations

import io
import os
import threading
from datetime import timedelta, timezone

from kafka import TopicPartition

from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.stream import Collector, FileTailer, LineProducer
from logpilot_dagster_tests.broker_fixture import recent, sample_lines, write_lines


def read_all(tailer: FileTailer) -> list[bytes]:
    lines = []
    while chunk := tailer.read():
        lines += chunk
    return lines


def consume_all(broker) -> list:
    consumer = broker.consumer()
    tps = [TopicPartition(broker.settings.topic, p) for p in consumer.partitions_for_topic(broker.settings.topic)]
    consumer.assign(tps)
    ends = consumer.end_offsets(tps)
    records = []
    while True:
        batch = [r for recs in consumer.poll(timeout_ms=1000).values() for r in recs]
        if not batch and all(consumer.position(tp) >= ends[tp] for tp in tps):
            break
        records += batch
    consumer.close()
    return sorted(records, key=lambda r: r.timestamp)


def test_tailer_follows_appends_rotation_and_truncation(tmp_path):
    log = tmp_path / "app.log"
    write_lines(log, [b"one", b"two"])
    tailer = FileTailer(log)
    assert read_all(tailer) == [b"one", b"two"]

    with open(log, "ab") as fh:
        fh.write(b"thr")  # a line still being written is not emitted
    assert read_all(tailer) == []
    with open(log, "ab") as fh:
        fh.write(b"ee\nfour\n")
    assert read_all(tailer) == [b"three", b"four"]

    with open(log, "ab") as fh:
        fh.write(b"five\nsix (no newline: the file is finished)")
    os.rename(log, tmp_path / "app.log.1")  # logrotate: rename, then a new file
    write_lines(log, [b"new one"])
    assert read_all(tailer) == [b"five", b"six (no newline: the file is finished)", b"new one"]

    with open(log, "r+b") as fh:  # copytruncate: same inode, size drops below our position
        fh.truncate(0)
    write_lines(log, [b"after"])
    assert read_all(tailer) == [b"after"]
    tailer.close()


def test_collector_resumes_from_its_state_and_finds_a_file_rotated_while_down(broker, live_home, tmp_path):
    log = tmp_path / "payments.log"
    start = recent(hours=1)
    lines = sample_lines("payments-api", 10, start, step=timedelta(seconds=2))
    state = live_home.state_dir / "collector.json"
    write_lines(log, lines[:5])
    with LineProducer(broker, SchemaRegistry.load(live_home)) as producer:
        first = Collector(producer, {"payments-api": log}, state)
        assert first.poll_once() == 5
        first.close()

        write_lines(log, lines[5:7])  # written before the rotation, never read by the first collector
        os.rename(log, tmp_path / "payments.log.1")
        write_lines(log, lines[7:])
        second = Collector(producer, {"payments-api": log}, state)
        while second.poll_once():
            pass
        second.close()

    records = consume_all(broker)
    assert [r.value for r in records] == lines
    assert {r.key for r in records} == {b"payments-api"}
    expected_ms = [int((start.replace(tzinfo=timezone.utc) + i * timedelta(seconds=2)).timestamp() * 1000)
                   for i in range(10)]
    assert [r.timestamp for r in records] == expected_ms  # event time parsed from each line


def test_collector_reads_stdin_until_it_ends(broker, live_home):
    lines = sample_lines("edge-gateway", 20, recent(hours=1))
    stdin = io.BytesIO(b"".join(line + b"\n" for line in lines) + b"\n")  # the blank line is not sent
    with LineProducer(broker, SchemaRegistry.load(live_home)) as producer:
        collector = Collector(producer, {}, live_home.state_dir / "collector.json", stdin=stdin,
                              stdin_source="edge-gateway")
        assert collector.run(threading.Event(), interval_s=0.05) == 20
    records = consume_all(broker)
    assert sorted(r.value for r in records) == sorted(lines)
    assert {r.key for r in records} == {b"edge-gateway"}
