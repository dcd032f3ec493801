"""The T1 gate: no run until the backfill publishes T1, then one run keyed by that T1."""

import dagster as dg

from logpilot_dagster.defs import backfill_assets as ba
from logpilot_dagster.defs.live import LiveIngestion, t1_gate
from logpilot_dagster_tests.broker_fixture import broker  # noqa: F401  (the real tansu broker on loopback)
from logpilot_dagster_tests.pipeline import metadata, resources


def test_sensor_skips_without_t1_and_fires_once_with_it(sample_home, broker):  # noqa: F811
    instance = dg.DagsterInstance.ephemeral()
    home = resources(sample_home.home)["logpilot"]

    def evaluate(bootstrap: str):
        live = LiveIngestion(bootstrap_servers=bootstrap)
        return t1_gate(dg.build_sensor_context(instance=instance, resources={"logpilot": home, "live": live}))

    assert "waiting for the backfill" in evaluate(broker.bootstrap_servers).skip_message
    result = dg.materialize([ba.t1_watermark], instance=instance, resources=resources(sample_home.home))
    t1 = metadata(result, "t1_watermark")["t1"]
    assert "no broker is up" in evaluate("").skip_message  # T1 alone does not launch a doomed run
    requests = [evaluate(broker.bootstrap_servers) for _ in range(2)]
    assert all(isinstance(r, dg.RunRequest) for r in requests)
    assert {r.run_key for r in requests} == {f"t1:{t1}"}  # the daemon launches a run key once
    assert requests[0].run_config["ops"]["consume_raw_topic"]["config"]["t1"] == t1
