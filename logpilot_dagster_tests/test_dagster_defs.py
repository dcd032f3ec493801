"""The code location as the Dagster UI sees it: the bootstrap job, per-year checks, standard metadata, quiet
definitions and automation that only runs on changed inputs."""

import warnings

import dagster as dg

from logpilot_dagster.defs import backfill_assets as ba
from logpilot_dagster.definitions import defs
from logpilot_dagster.storage.warehouse import connect
from logpilot_dagster.ingest.sample_data import write_sample_home
from logpilot_dagster_tests.pipeline import PARTITIONED, materialize_year, resources

LINE_ACCOUNTING = dg.AssetCheckKey(dg.AssetKey("logs_table"), "line_accounting")


def test_bootstrap_is_a_named_yearly_in_process_job():
    job = defs.resolve_job_def("bootstrap")
    assert job.executor_def is dg.in_process_executor
    assert job.partitions_def.get_partition_keys()[0] == "2021"
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert keys == {"landing_files", "log_templates", "logs_parquet", "logs_table"}
    assert LINE_ACCOUNTING in job.asset_layer.asset_graph.asset_check_keys


def test_definitions_print_no_beta_or_preview_warning_and_sensors_are_described():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        repo = dg.Definitions(assets=defs.assets, asset_checks=defs.asset_checks, jobs=defs.jobs,
                              sensors=defs.sensors, schedules=defs.schedules, resources=defs.resources,
                              executor=defs.executor).get_repository_def()
    noisy = [str(w.message) for w in caught if type(w.message).__name__ in ("BetaWarning", "PreviewWarning")]
    assert noisy == []
    assert all(s.description and "``" not in s.description for s in repo.sensor_defs)
    shown = [d for a in repo.assets_defs_by_key.values() for d in a.descriptions_by_key.values()]
    shown += [j.description for j in repo.get_all_jobs()] + [s.description for c in defs.asset_checks
                                                             for s in c.check_specs]
    assert [d for d in shown if d and "``" in d] == []


def test_a_year_reports_its_check_per_partition_and_standard_metadata(tmp_path):
    home = tmp_path / "home"
    write_sample_home(home, total_lines=4_000, years=(2023,))
    instance = dg.DagsterInstance.ephemeral()
    result = materialize_year(home, 2023, instance=instance)
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed and evaluation.partition == "2023"
    meta = {e.asset_key.path[-1]: e.step_materialization_data.materialization.metadata
            for e in result.get_asset_materialization_events()}
    assert meta["logs_table"]["dagster/row_count"].value > 3_000
    assert meta["logs_table"]["dagster/table_name"].value == "logs.main.logs"
    assert meta["quarantine"]["dagster/row_count"].value == meta["logs_table"]["quarantined"].value
    assert meta["landing_files"]["bytes"].value > 0 and meta["landing_files"]["size"].value.endswith("B")
    graph = defs.resolve_asset_graph()
    with connect(home / "logs.duckdb", read_only=True) as con:  # the tables the run wrote
        for asset, table in (("logs_table", "logs"), ("log_templates", "templates"),
                             ("system_catalog", "system_catalog"), ("quarantine", "quarantine")):
            actual = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = ? ORDER BY ordinal_position", [table]).fetchall()
            schema = graph.get(dg.AssetKey(asset)).metadata["dagster/column_schema"]
            assert [(c.name, c.type) for c in schema.columns] == actual, asset


def test_automation_skips_downstream_when_a_replayed_year_changed_nothing(tmp_path):
    """Shown on `t1_watermark` (with its check); `template_vectors` and `runbook_index` share its condition."""
    graph = defs.resolve_asset_graph()
    labels = {graph.get(dg.AssetKey(k)).automation_condition.get_label()
              for k in ("t1_watermark", "template_vectors", "runbook_index")}
    assert labels == {"after checks, when inputs change"}
    home = tmp_path / "home"
    write_sample_home(home, total_lines=4_000, years=(2023,))
    instance = dg.DagsterInstance.ephemeral()
    t1 = dg.AssetKey("t1_watermark")
    automation = dg.Definitions(assets=[*PARTITIONED[:3], ba.t1_watermark], asset_checks=[PARTITIONED[3]],
                                resources=resources(home))
    cursor = None

    def tick() -> bool:
        nonlocal cursor
        evaluation = dg.evaluate_automation_conditions(defs=automation, instance=instance, cursor=cursor)
        cursor = evaluation.cursor
        return evaluation.get_num_requested(t1) == 1

    assert not tick()  # the sensor's first tick only starts watching
    materialize_year(home, 2023, instance=instance)  # one year of five: the others have no landing files
    assert tick()
    dg.materialize([ba.t1_watermark], resources=resources(home), instance=instance)
    assert not tick()
    materialize_year(home, 2023, instance=instance)  # the same landing files again: the same data version
    assert not tick()
