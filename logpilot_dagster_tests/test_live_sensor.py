"""The T1 gate and the ``live_ingestion`` job: nothing before T1, one run per T1, exactly once after it."""

import random
import shutil
from datetime import datetime, timedelta

import dagster as dg
import duckdb

from logpilot_dagster.defs import backfill_assets as ba
from logpilot_dagster.defs.live import LiveIngestion, live_ingestion, t1_gate
from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.ingest.sample_data import render_line
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.stream import LineProducer
from logpilot_dagster_tests.pipeline import materialize_year, metadata, resources


def test_sensor_skips_without_t1_and_fires_once_with_it(sample_home, broker):
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


def test_live_ingestion_job_lands_only_what_follows_t1(sample_home, broker, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(sample_home.home, home)
    paths = LogPilotPaths.from_env(home)
    t1 = datetime.fromisoformat(metadata(dg.materialize([ba.t1_watermark], resources=resources(home)),
                                         "t1_watermark")["t1"])
    r = random.Random(3)
    lines = [render_line("payments-api", t1 - timedelta(minutes=i), r)[1] for i in range(10)]
    lines += [render_line("payments-api", t1 + timedelta(seconds=i), r)[1] for i in range(1, 50)]
    novel = f"{t1 + timedelta(minutes=5):%Y-%m-%d %H:%M:%S},000 ERROR [main] com.acme.Ledger: Quantum ledger desynchronised"
    lines.append(novel)
    with LineProducer(broker, SchemaRegistry.load(paths), topic=broker.settings.topic) as producer:
        producer.send("payments-api", [line.encode() for line in lines])

    def run() -> dict:
        res = {**resources(home), "live": LiveIngestion(bootstrap_servers=broker.bootstrap_servers,
                                                        topic=broker.settings.topic)}
        config = {"ops": {"consume_raw_topic": {"config": {"t1": t1.isoformat(), "until_caught_up": True}}}}
        return live_ingestion.execute_in_process(run_config=config, resources=res).output_for_node("consume_raw_topic")

    first = run()
    assert (first["inserted"], first["skipped_before_t1"], first["lag"]) == (50, 10, 0)
    assert run()["inserted"] == 0  # resumes from the offsets stored with the rows
    con = duckdb.connect(str(paths.db_path), read_only=True)
    try:
        after = con.execute("SELECT count(*), count(DISTINCT event_id) FROM logs WHERE ts > ?", [t1]).fetchone()
    finally:
        con.close()
    assert after == (50, 50)

    def novel_template() -> list:
        con = duckdb.connect(str(paths.db_path), read_only=True)
        try:
            return con.execute("SELECT count FROM templates WHERE template LIKE 'Quantum ledger%'").fetchall()
        finally:
            con.close()

    assert novel_template() == [(1,)]  # mined live
    materialize_year(home, 2023)
    assert novel_template() == [(1,)]  # a backfill re-run keeps what only the live worker knows
