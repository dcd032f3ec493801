"""Steady state: the ``live_ingestion`` job and the sensor that launches it once T1 is published."""

from dataclasses import replace
from datetime import datetime

import dagster as dg

from logpilot_dagster.broker import BrokerSettings, announce_file
from logpilot_dagster.broker.embedded import announced_bootstrap
from logpilot_dagster.defs.resources import LogPilotHome, env_or
from logpilot_dagster.stream.settings import DEFAULT_BATCH_SIZE, DEFAULT_GROUP, LiveSettings
from logpilot_dagster.stream.worker import run_ingestion

T1_KEY = dg.AssetKey("t1_watermark")


class LiveIngestion(dg.ConfigurableResource):
    """The raw topic and the worker's batching. Empty ``bootstrap_servers``: the embedded broker that
    ``logpilot broker`` announced under ``$LOGPILOT_HOME/state``."""

    bootstrap_servers: str = ""
    topic: str = "logpilot.raw"
    group_id: str = DEFAULT_GROUP
    batch_size: int = DEFAULT_BATCH_SIZE
    max_latency_s: float = 1.0

    def settings(self, home: LogPilotHome) -> LiveSettings:
        broker = replace(BrokerSettings.from_env(), bootstrap_servers=self.bootstrap_servers or None, topic=self.topic)
        return LiveSettings(paths=home.paths, broker=broker, group_id=self.group_id, batch_size=self.batch_size,
                            max_latency_s=self.max_latency_s)


def live_resource() -> LiveIngestion:
    return LiveIngestion(bootstrap_servers=env_or("LOGPILOT_KAFKA_BOOTSTRAP", ""),
                         topic=env_or("LOGPILOT_KAFKA_TOPIC", "logpilot.raw"))


class IngestConfig(dg.Config):
    t1: str = ""
    until_caught_up: bool = True
    max_seconds: float = 0.0


@dg.op(tags={"kind": "kafka"})
def consume_raw_topic(context: dg.OpExecutionContext, config: IngestConfig, logpilot: LogPilotHome,
                      live: LiveIngestion) -> dict:
    """Drain the raw topic from the stored offsets, dropping records at or before T1 (catch-up), then keep up
    (real-time) until caught up or ``max_seconds``; rows and offsets commit together in DuckDB."""
    stats = run_ingestion(live.settings(logpilot), until_caught_up=config.until_caught_up,
                          max_seconds=config.max_seconds or None,
                          t1=datetime.fromisoformat(config.t1) if config.t1 else None, report=context.log.info)
    context.add_output_metadata({k: v for k, v in stats.as_dict().items() if isinstance(v, (int, float, str))})
    return stats.as_dict()


@dg.job(tags={"logpilot/phase": "live"})
def live_ingestion():
    """Catch up from T1, then real time (the same code as ``logpilot ingest``)."""
    consume_raw_topic()


@dg.sensor(job=live_ingestion, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def t1_gate(context: dg.SensorEvaluationContext, logpilot: LogPilotHome, live: LiveIngestion):
    """Skip until ``t1_watermark`` has been materialized and a broker is reachable; then launch once per T1
    value (the run key). Reads T1 from the event log only: a sensor never opens the DuckDB file."""
    event = context.instance.get_latest_materialization_event(T1_KEY)
    materialization = event.asset_materialization if event else None
    t1 = materialization.metadata.get("t1").value if materialization and "t1" in materialization.metadata else None
    if not t1:
        return dg.SkipReason("waiting for the backfill to publish T1 (t1_watermark)")
    if not live.bootstrap_servers and announced_bootstrap(announce_file(logpilot.paths.state_dir)) is None:
        return dg.SkipReason("T1 is published but no broker is up: run `logpilot broker` or set "
                             "LOGPILOT_KAFKA_BOOTSTRAP")
    return dg.RunRequest(run_key=f"t1:{t1}", tags={"logpilot/t1": t1},
                         run_config={"ops": {"consume_raw_topic": {"config": {"t1": t1}}}})
