"""The T1 gate: no run until the backfill publishes T1, then one run keyed by that T1."""

import dagster as dg

from logpilot_dagster.defs import backfill_assets as ba
from logpilot_dagster.defs.live import t1_gate
from logpilot_dagster_tests.pipeline import metadata, resources


def test_sensor_skips_without_t1_and_fires_once_with_it(sample_home):
    instance = dg.DagsterInstance.ephemeral()
    first = t1_gate(dg.build_sensor_context(instance=instance))
    assert isinstance(first, dg.SkipReason)

    result = dg.materialize([ba.t1_watermark], instance=instance, resources=resources(sample_home.home))
    t1 = metadata(result, "t1_watermark")["t1"]
    requests = [t1_gate(dg.build_sensor_context(instance=instance)) for _ in range(2)]
    assert all(isinstance(r, dg.RunRequest) for r in requests)
    assert {r.run_key for r in requests} == {f"t1:{t1}"}  # the daemon launches a run key once
    assert requests[0].run_config["ops"]["consume_raw_topic"]["config"]["t1"] == t1
