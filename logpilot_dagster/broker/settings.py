"""Plain broker settings, readable from the environment (and easy to fill from ``dg.EnvVar`` values)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

DEFAULT_TOPIC = "logpilot.raw"
DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000
DEFAULT_PARTITIONS = 3
KAFKA_PYTHON, CONFLUENT = "kafka-python", "confluent"
CLIENTS = (KAFKA_PYTHON, CONFLUENT)
DEFAULT_CLIENT = KAFKA_PYTHON


@dataclass(frozen=True)
class BrokerSettings:
    """Where the raw-log topic lives. ``bootstrap_servers=None`` means the embedded broker.

    ``client`` is the worker's consumer client: ``kafka-python`` or ``confluent`` (confluent-kafka, on
    librdkafka); producers and topic admin use kafka-python either way.
    The security fields are passed to kafka-python unchanged (``security_protocol`` is e.g. ``SASL_SSL``,
    ``sasl_mechanism`` e.g. ``SCRAM-SHA-512``); unset fields are left at kafka-python's defaults.
    """

    bootstrap_servers: str | None = None
    topic: str = DEFAULT_TOPIC
    partitions: int = DEFAULT_PARTITIONS
    retention_ms: int = DEFAULT_RETENTION_MS
    security_protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    client: str = DEFAULT_CLIENT

    def __post_init__(self) -> None:
        if self.client not in CLIENTS:
            raise ValueError(f"LOGPILOT_KAFKA_CLIENT must be one of {', '.join(CLIENTS)}, not {self.client!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "BrokerSettings":
        """``LOGPILOT_KAFKA_BOOTSTRAP`` (unset = embedded), ``LOGPILOT_KAFKA_TOPIC``, ``..._PARTITIONS``,
        ``..._RETENTION_MS``, ``..._SECURITY_PROTOCOL``, ``..._SASL_MECHANISM``, ``..._SASL_USERNAME``,
        ``..._SASL_PASSWORD``, ``..._SSL_CAFILE``, ``..._SSL_CERTFILE``, ``..._SSL_KEYFILE``, ``..._CLIENT``."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            return env.get(f"LOGPILOT_KAFKA_{name}") or None

        return cls(
            bootstrap_servers=get("BOOTSTRAP"),
            topic=get("TOPIC") or DEFAULT_TOPIC,
            partitions=int(get("PARTITIONS") or DEFAULT_PARTITIONS),
            retention_ms=int(get("RETENTION_MS") or DEFAULT_RETENTION_MS),
            security_protocol=get("SECURITY_PROTOCOL"),
            sasl_mechanism=get("SASL_MECHANISM"),
            sasl_username=get("SASL_USERNAME"),
            sasl_password=get("SASL_PASSWORD"),
            ssl_cafile=get("SSL_CAFILE"),
            ssl_certfile=get("SSL_CERTFILE"),
            ssl_keyfile=get("SSL_KEYFILE"),
            client=get("CLIENT") or DEFAULT_CLIENT,
        )

    def security_config(self) -> dict:
        """The kafka-python keyword arguments for TLS/SASL that are set."""
        config = {
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_plain_username": self.sasl_username,
            "sasl_plain_password": self.sasl_password,
            "ssl_cafile": self.ssl_cafile,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
        }
        return {key: value for key, value in config.items() if value is not None}
