"""The worker's consumer interface, on each client, against a real embedded broker (tansu)."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from logpilot_dagster.broker import BrokerSettings, KafkaBroker
from logpilot_dagster.broker.confluent_consumer import librdkafka_config
from logpilot_dagster.broker.consumer import RECORD_SCHEMA, BrokerError, BrokerUnreachable
from logpilot_dagster.broker.ports import free_port
from logpilot_dagster.stream import run_ingestion
from logpilot_dagster.stream.client_noise import CONDITIONS, OneLinePerCondition, quiet_kafka_logs
from logpilot_dagster_tests.broker_fixture import both_clients


def _produce(broker, n: int, partition: int) -> None:
    broker.ensure_topic()
    producer = broker.producer()
    for i in range(n):
        producer.send(broker.settings.topic, key=b"k", value=b"line %d" % i, partition=partition, timestamp_ms=1000 + i)
    producer.flush()
    producer.close()


def _drain(consumer, want: int):
    tables = []
    for _ in range(100):
        table = consumer.poll(0.2, max_records=want)
        tables.append(table)
        if sum(t.num_rows for t in tables) >= want:
            break
    return tables


@both_clients
def test_assign_seek_poll_and_positions(broker, kafka_client):
    _produce(broker, 300, partition=1)
    consumer = broker.log_consumer(group_id="g1")
    try:
        assert consumer.client == kafka_client and consumer.partitions() == [0, 1, 2]
        consumer.assign([0, 1, 2])
        for p in (0, 1, 2):
            consumer.seek(p, None)
        assert [consumer.position(p) for p in (0, 1, 2)] == [0, 0, 0]
        tables = _drain(consumer, 300)
        assert all(t.schema == RECORD_SCHEMA for t in tables)
        rows = [r for t in tables for r in t.to_pylist()]
        assert [r["offset"] for r in rows] == list(range(300))
        assert rows[7] == {"partition": 1, "offset": 7, "timestamp": 1007, "key": b"k", "value": b"line 7"}
        assert [consumer.position(p) for p in (0, 1, 2)] == [0, 300, 0]
        assert consumer.highwater(1) == 300  # from the fetches: the broker's real head

        consumer.seek(1, 295)  # back, and again from a fresh assignment
        assert [r["offset"] for t in _drain(consumer, 5) for r in t.to_pylist()] == [295, 296, 297, 298, 299]
        assert consumer.poll(0.2, max_records=10).num_rows == 0
        consumer.assign([1])
        assert consumer.highwater(1) is None  # nothing fetched since the assignment
        consumer.seek(1, 299)
        one = consumer.poll(2.0, max_records=1)
        assert one.column("offset").to_pylist() == [299]

        assert consumer.committed(1) is None
        consumer.commit({1: 120})
        assert consumer.committed(1) == 120
        assert consumer.end_offsets([0])[0] == 0
    finally:
        consumer.close()


def test_no_broker_is_a_clear_retriable_error():
    """(kafka-python says the same, after its 30 s bootstrap timeout: ``kafka-python: KafkaTimeoutError: ...``.)"""
    settings = BrokerSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", topic="t.raw", client="confluent")
    consumer = KafkaBroker(settings).log_consumer()
    try:
        with pytest.raises(BrokerUnreachable,
                           match="^confluent-kafka: _ALL_BROKERS_DOWN: .*All broker connections are down"):
            consumer.end_offsets([0])
    finally:
        consumer.close()


@pytest.mark.parametrize("kafka_client", ["confluent"])
def test_a_partition_the_client_does_not_know_yet_is_retriable(broker):
    """After a broker restart librdkafka's metadata can lack the partition for a moment (a clean-clone failure:
    the worker's resume died on it); the worker retries that, as it retries a broker that is down."""
    broker.ensure_topic()
    consumer = broker.log_consumer()
    try:
        with pytest.raises(BrokerUnreachable, match="^confluent-kafka: (_UNKNOWN_PARTITION|UNKNOWN_TOPIC_OR_PART)"):
            consumer.end_offsets([99])
    finally:
        consumer.close()


def test_confluent_without_a_broker_logs_one_clear_line(caplog):
    """librdkafka reports every failed connection attempt; the worker's log gets one line, and the next poll
    says the broker is unreachable."""
    for name, _ in CONDITIONS:  # filters installed by earlier tests in this process remember their last line
        logger = logging.getLogger(name)
        for installed in [f for f in logger.filters if isinstance(f, OneLinePerCondition)]:
            logger.removeFilter(installed)
    quiet_kafka_logs()
    settings = BrokerSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", topic="t.raw", client="confluent")
    consumer = KafkaBroker(settings).log_consumer()
    try:
        consumer.assign([0])
        consumer.seek(0, 0)
        with caplog.at_level(logging.INFO, logger="confluent_kafka"), pytest.raises(BrokerUnreachable):
            for _ in range(50):
                consumer.poll(0.1, max_records=10)
    finally:
        consumer.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "confluent_kafka"]
    assert lines == ["confluent-kafka: no broker reachable; retrying quietly until it answers"]


def test_security_settings_reach_librdkafka():
    settings = BrokerSettings(bootstrap_servers="127.0.0.1:1", security_protocol="SASL_SSL",
                              sasl_mechanism="SCRAM-SHA-512", sasl_username="u", sasl_password="p",
                              ssl_cafile="/nonexistent/ca.pem", client="confluent")
    assert librdkafka_config({"bootstrap_servers": "h:1", **settings.security_config()}) == {
        "bootstrap.servers": "h:1", "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "u", "sasl.password": "p", "ssl.ca.location": "/nonexistent/ca.pem"}
    with pytest.raises(BrokerError, match="^confluent-kafka: .*ssl.ca.location"):  # librdkafka checks the file
        KafkaBroker(settings).log_consumer()


def test_unknown_client_is_refused():
    with pytest.raises(ValueError, match="LOGPILOT_KAFKA_CLIENT must be one of kafka-python, confluent"):
        BrokerSettings.from_env({"LOGPILOT_KAFKA_CLIENT": "rdkafka"})


def test_the_worker_reads_with_the_client_of_its_settings(broker, live_settings):
    """The broker object may come from elsewhere (the benchmark, Dagster); the worker's settings pick the client."""
    _produce(broker, 10, partition=0)
    settings = replace(live_settings, broker=replace(live_settings.broker, client="confluent"))
    messages: list[str] = []
    stats = run_ingestion(settings, until_caught_up=True, broker=broker, report=messages.append)
    assert broker.settings.client == "kafka-python" and stats.consumed == 10
    assert any(m.startswith("ingesting test.raw") and m.endswith("with confluent, T1=None") for m in messages)
