"""The live subcommands end to end: ``broker`` announces itself, ``produce`` and ``ingest`` find it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from kafka import KafkaAdminClient

from logpilot_dagster.broker import announce_file
from logpilot_dagster_tests.broker_fixture import recent, sample_lines, write_lines

CLI = [sys.executable, "-m", "logpilot_dagster.stream"]


def test_broker_produce_ingest(live_home, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGPILOT_KAFKA_")}
    env.update(LOGPILOT_HOME=str(live_home.home), LOGPILOT_KAFKA_TOPIC="cli.raw")
    log = tmp_path / "payments-api.2026.log"
    write_lines(log, sample_lines("payments-api", 200, recent(hours=1)))
    broker = subprocess.Popen(CLI + ["broker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        bootstrap = broker.stdout.readline().strip()
        assert bootstrap.startswith("127.0.0.1:")
        assert json.loads(announce_file(live_home.state_dir).read_text())["bootstrap_servers"] == bootstrap

        produced = subprocess.run(CLI + ["produce", str(log)], env=env, capture_output=True, text=True, timeout=60)
        assert produced.returncode == 0, produced.stderr
        assert "produced 200 lines to cli.raw (key payments-api)" in produced.stdout

        ingested = subprocess.run(CLI + ["ingest", "--until-caught-up"], env=env, capture_output=True, text=True,
                                  timeout=120)
        assert ingested.returncode == 0, ingested.stderr
        stats = json.loads(ingested.stdout.strip().splitlines()[-1])
        assert (stats["consumed"], stats["inserted"], stats["lag"]) == (200, 200, 0)
    finally:
        broker.send_signal(signal.SIGTERM)
        assert broker.wait(timeout=30) == 0
    assert not announce_file(live_home.state_dir).exists()


def test_broker_creates_every_topic_it_is_given(live_home):
    """A second pipeline (say, a Vector sink) writes to its own topic: the broker creates it like the default one,
    with the configured partitions, instead of leaving it to the broker's auto-creation on first produce."""
    env = {**os.environ, "LOGPILOT_HOME": str(live_home.home), "LOGPILOT_KAFKA_PARTITIONS": "2"}
    env.pop("LOGPILOT_KAFKA_BOOTSTRAP", None)
    broker = subprocess.Popen(CLI + ["broker", "--memory", "--topic", "vector.raw", "--topic", "fluent.raw"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        bootstrap = broker.stdout.readline().strip()
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            topics = {t["name"]: len(t["partitions"]) for t in admin.describe_topics()}
        finally:
            admin.close()
        assert topics == {"vector.raw": 2, "fluent.raw": 2}
    finally:
        broker.send_signal(signal.SIGTERM)
        assert broker.wait(timeout=30) == 0
