"""Broker backends: the embedded tansu lifecycle and the settings that reach kafka-python."""

from __future__ import annotations

import pytest

from logpilot_dagster.broker import (BrokerSettings, BrokerUnavailable, EmbeddedBroker, KafkaBroker, announce_file,
                                     connect_broker)
from logpilot_dagster.broker.embedded import port_open


def test_embedded_broker_announces_itself_while_running(tmp_path):
    settings = BrokerSettings(topic="life.raw", partitions=2)
    embedded = EmbeddedBroker(settings, announce_file=announce_file(tmp_path))
    with pytest.raises(BrokerUnavailable):
        connect_broker(settings, tmp_path)
    with embedded:
        assert embedded.ensure_topic() is True
        assert embedded.ensure_topic() is False
        attached = connect_broker(settings, tmp_path)
        assert isinstance(attached, KafkaBroker) and attached.bootstrap_servers == embedded.bootstrap_servers
        assert [tp.partition for tp in attached.partitions()] == [0, 1]
    assert not port_open("127.0.0.1", embedded.port)
    assert not announce_file(tmp_path).exists()
    with pytest.raises(BrokerUnavailable):
        connect_broker(settings, tmp_path)


def test_settings_from_env_reach_the_client_config(tmp_path):
    env = {"LOGPILOT_KAFKA_BOOTSTRAP": "kafka-1:9093,kafka-2:9093", "LOGPILOT_KAFKA_TOPIC": "prod.raw",
           "LOGPILOT_KAFKA_RETENTION_MS": "3600000", "LOGPILOT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
           "LOGPILOT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "LOGPILOT_KAFKA_SASL_USERNAME": "logpilot",
           "LOGPILOT_KAFKA_SASL_PASSWORD": "secret", "LOGPILOT_KAFKA_SSL_CAFILE": "/etc/ca.pem"}
    settings = BrokerSettings.from_env(env)
    assert (settings.topic, settings.retention_ms) == ("prod.raw", 3_600_000)
    remote = connect_broker(settings, tmp_path)  # a configured bootstrap never needs the announce file
    assert remote.client_config() == {
        "bootstrap_servers": "kafka-1:9093,kafka-2:9093", "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "logpilot", "sasl_plain_password": "secret",
        "ssl_cafile": "/etc/ca.pem"}
    defaults = BrokerSettings.from_env({})
    assert (defaults.bootstrap_servers, defaults.topic, defaults.retention_ms) == (None, "logpilot.raw", 604_800_000)
