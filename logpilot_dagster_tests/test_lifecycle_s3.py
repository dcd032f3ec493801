"""Tiering on S3 (a real moto server on loopback) through the Dagster asset: cold objects are GLACIER and
unreadable, ``logs_all`` reads warm objects over httpfs from a locked-down connection, restore brings cold back."""

from datetime import datetime

import dagster as dg
import pytest

from logpilot_dagster.defs.lifecycle import TierStore, restore, tier_catalog
from logpilot_dagster.defs.resources import LogPilotHome, S3Connection
from logpilot_dagster.lifecycle import catalog, views
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.warehouse import connect, ensure_schema
from logpilot_dagster_tests.lifecycle_data import answers, insert_logs


@pytest.fixture
def s3(tier_bucket):
    return tier_bucket


def test_tiering_to_s3_glacier_and_restore(tmp_path, s3):
    client, endpoint = s3
    paths = LogPilotPaths.from_env(tmp_path).ensure()
    with connect(paths.db_path) as con:
        ensure_schema(con)
        insert_logs(con, 2_000, datetime(2025, 5, 1), datetime(2026, 12, 1))
        before = answers(con, "logs")
    resources = {"logpilot": LogPilotHome(home=str(tmp_path)),
                 "tier_store": TierStore(s3_bucket="tiers", s3_prefix="lp", cold_storage_class="DEEP_ARCHIVE",
                                         s3=S3Connection(endpoint_url=endpoint, region_name="us-east-1"))}
    config = {"ops": {"tier_catalog": {"config": {"now": "2026-12-02T00:00:00"}}}}
    result = dg.materialize([tier_catalog], resources=resources, run_config=config)
    meta = result.get_asset_materialization_events()[0].step_materialization_data.materialization.metadata
    assert meta["rows_to_warm"].value >= 1_850 and meta["cold_objects_written"].value > 0

    listed = {o["Key"]: o.get("StorageClass") for page in client.get_paginator("list_objects_v2").paginate(
        Bucket="tiers", Prefix="lp/") for o in page.get("Contents", [])}
    cold = sorted(k for k in listed if k.startswith("lp/cold/"))
    assert cold and {listed[k] for k in cold} == {"DEEP_ARCHIVE"}
    assert {listed[k] for k in listed if k.startswith("lp/warm/")} == {"STANDARD"}
    with pytest.raises(client.exceptions.ClientError, match="InvalidObjectState"):
        client.get_object(Bucket="tiers", Key=cold[0])

    with connect(paths.db_path, read_only=True) as con:
        views.prepare_reader(con, paths)  # httpfs + temporary secret, then external access off
        assert views.tier_directories(paths) == ["s3://tiers/lp/warm/", "s3://tiers/lp/cold/"]
        assert answers(con, "logs_all") != before  # cold rows are not readable ...
        assert len(catalog.cold_ranges(con, None, None, None)) == len(cold)  # ... and the catalog says so
        with pytest.raises(Exception, match="Permission"):
            con.execute("SELECT * FROM read_csv('/etc/passwd')")

    done = restore.execute_in_process(resources=resources, run_config={
        "ops": {"restore_cold_objects": {"config": {"start": "2024-01-01", "end": "2026-01-01"}}}})
    assert done.output_for_node("restore_cold_objects")["objects_restored"] == len(cold)
    assert client.head_object(Bucket="tiers", Key=cold[0])["Restore"].startswith('ongoing-request="false"')
    with connect(paths.db_path, read_only=True) as con:
        views.prepare_reader(con, paths)
        assert catalog.cold_ranges(con, None, None, None) == []
        assert answers(con, "logs_all") == before

    again = dg.materialize([tier_catalog], resources=resources, run_config=config)
    meta = again.get_asset_materialization_events()[0].step_materialization_data.materialization.metadata
    assert (meta["rows_to_warm"].value, meta["cold_objects_written"].value, meta["garbage_deleted"].value) == (0, 0, 0)
