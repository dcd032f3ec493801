"""The T1 gate and the ``live_ingestion`` job: nothing before T1, one run that keeps going, exactly once after T1."""

import random
import shutil
import threading
from datetime import datetime, timedelta

import dagster as dg
import duckdb

from logpilot_dagster.defs import backfill_assets as ba
from logpilot_dagster.defs.live import FAILURES_IN_A_ROW, LiveIngestion, live_ingestion, t1_gate
from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.ingest.sample_data import render_line
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.stream import LineProducer
from logpilot_dagster_tests.pipeline import materialize_year, metadata, resources
from logpilot_dagster_tests.test_live_worker import _wait_for, query_when_free


def test_sensor_skips_without_t1_and_without_a_broker(sample_home, broker):
    instance = dg.DagsterInstance.ephemeral()
    home = resources(sample_home.home)["logpilot"]

    def evaluate(bootstrap: str):
        live = LiveIngestion(bootstrap_servers=bootstrap)
        return t1_gate(dg.build_sensor_context(instance=instance, resources={"logpilot": home, "live": live}))

    assert "waiting for the backfill" in evaluate(broker.bootstrap_servers).skip_message
    result = dg.materialize([ba.t1_watermark], instance=instance, resources=resources(sample_home.home))
    t1 = metadata(result, "t1_watermark")["t1"]
    assert "no broker is up" in evaluate("").skip_message  # T1 alone does not launch a doomed run
    request = evaluate(broker.bootstrap_servers)
    assert isinstance(request, dg.RunRequest)
    assert request.run_config["ops"]["consume_raw_topic"]["config"] == {"t1": t1}  # real time: no end


def test_sensor_backs_off_after_live_runs_fail_in_a_row(sample_home, broker):
    """A live run that cannot start (here: a T1 that is not a time) is not relaunched every 30 s forever."""
    instance = dg.DagsterInstance.ephemeral()
    home = resources(sample_home.home)["logpilot"]
    live = LiveIngestion(bootstrap_servers=broker.bootstrap_servers)
    dg.materialize([ba.t1_watermark], instance=instance, resources=resources(sample_home.home))

    def evaluate():
        return t1_gate(dg.build_sensor_context(instance=instance, resources={"logpilot": home, "live": live}))

    for _ in range(FAILURES_IN_A_ROW):
        assert isinstance(evaluate(), dg.RunRequest)
        result = live_ingestion.execute_in_process(
            run_config={"ops": {"consume_raw_topic": {"config": {"t1": "not a time"}}}}, instance=instance,
            resources={"logpilot": home, "live": live}, raise_on_error=False)
        assert not result.success
    assert f"the last {FAILURES_IN_A_ROW} live_ingestion runs failed" in evaluate().skip_message


def test_dagster_keeps_logs_current_after_the_first_catch_up(sample_home, broker, tmp_path):
    """The sensor starts one long-running run; records produced after its catch-up land through it; while it
    runs the sensor only reports its progress; once it ends, the sensor starts another."""
    home = tmp_path / "home"
    shutil.copytree(sample_home.home, home)
    paths = LogPilotPaths.from_env(home)
    instance = dg.DagsterInstance.ephemeral()
    t1 = datetime.fromisoformat(metadata(dg.materialize([ba.t1_watermark], instance=instance,
                                                        resources=resources(home)), "t1_watermark")["t1"])
    res = {**resources(home), "live": LiveIngestion(bootstrap_servers=broker.bootstrap_servers,
                                                    topic=broker.settings.topic)}

    def evaluate():
        return t1_gate(dg.build_sensor_context(instance=instance, resources={k: res[k] for k in ("logpilot", "live")}))

    def produce(first_second: int, n: int) -> None:
        r = random.Random(first_second)
        lines = [render_line("payments-api", t1 + timedelta(seconds=first_second + i), r)[1].encode()
                 for i in range(n)]
        with LineProducer(broker, SchemaRegistry.load(paths), topic=broker.settings.topic) as producer:
            producer.send("payments-api", lines)

    def live_rows():
        return query_when_free(paths, f"SELECT count(*) FROM logs WHERE ts > '{t1}'")

    produce(1, 300)
    request = evaluate()
    outcome: dict = {}
    run = threading.Thread(target=lambda: outcome.update(result=live_ingestion.execute_in_process(
        run_config=request.run_config, resources=res, instance=instance, tags=request.tags)), daemon=True)
    run.start()
    try:
        _wait_for(lambda: live_rows() == [(300,)])
        produce(1000, 200)  # after the first catch-up: only a run that keeps going stores these
        _wait_for(lambda: live_rows() == [(500,)])
        _wait_for(lambda: "keeps logs current: mode real-time" in (evaluate().skip_message or ""))
    finally:
        [active] = instance.get_runs(dg.RunsFilter(job_name="live_ingestion",
                                                   statuses=[dg.DagsterRunStatus.STARTED]))
        instance.report_run_canceling(active)  # what the UI's Terminate does first
        run.join(timeout=60)
    assert outcome["result"].output_for_node("consume_raw_topic")["inserted"] == 500
    observed = instance.fetch_observations(dg.AssetKey("raw_topic"), limit=10).records
    latest = observed[0].asset_observation.metadata
    assert {k: latest[k].value for k in ("mode", "lag", "inserted")} == {"mode": "real-time", "lag": 0, "inserted": 500}
    assert isinstance(evaluate(), dg.RunRequest)  # the run ended: the sensor starts the next one


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
