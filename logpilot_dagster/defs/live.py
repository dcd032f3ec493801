"""Steady state: one long-running ``live_ingestion`` run keeps ``logs`` current; the sensor ``t1_gate`` starts it
once T1 is published and starts it again whenever no such run is active (it died, or was stopped).

The run observes ``raw_topic`` with the worker's mode, lag and rate (first report, every mode change, at least
every ``OBSERVE_EVERY_S`` and when it stops), so the asset page plots them; its output metadata has the totals.
"""

import time
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

import dagster as dg

from logpilot_dagster.broker import BrokerSettings, announce_file
from logpilot_dagster.broker.embedded import announced_bootstrap
from logpilot_dagster.defs.resources import LogPilotHome, env_or
from logpilot_dagster.defs.sensors import described_sensor
from logpilot_dagster.stream import live_state
from logpilot_dagster.stream.settings import DEFAULT_BATCH_SIZE, DEFAULT_GROUP, LiveSettings

if TYPE_CHECKING:  # the worker (kafka) is imported by the live run, not when the code location loads
    from logpilot_dagster.stream.worker import IngestStats

T1_KEY = dg.AssetKey("t1_watermark")
RAW_TOPIC = dg.AssetKey("raw_topic")
OBSERVE_EVERY_S = 60.0
#: After this many live runs in a row failed, the sensor waits ``FAILED_BACKOFF_S`` after the last one.
FAILURES_IN_A_ROW, FAILED_BACKOFF_S = 3, 600.0
#: A live run in one of these states needs no other.
ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
          dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]

raw_topic = dg.AssetSpec(
    RAW_TOPIC, group_name="live", kinds={"kafka"},
    description="The raw-log topic (LOGPILOT_KAFKA_TOPIC). The live_ingestion run observes it with its consumer's "
                "mode (catch-up / real-time), lag (records behind the head) and rate (records/s).",
)


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
    until_caught_up: bool = False
    max_seconds: float = 0.0


def _metadata(stats: "IngestStats") -> dict:
    return {k: v for k, v in stats.as_dict().items() if isinstance(v, (int, float, str))}


class _Observer:
    """Turns the worker's progress into ``raw_topic`` observations and log lines, at a rate the event log bears."""

    def __init__(self, context: dg.OpExecutionContext) -> None:
        self.context = context
        self.last_mode: str | None = None
        self.last_at = 0.0

    def __call__(self, stats: "IngestStats") -> None:
        """The worker's progress: logged and observed on a mode change or once ``OBSERVE_EVERY_S`` passed."""
        if stats.mode == self.last_mode and time.monotonic() - self.last_at < OBSERVE_EVERY_S:
            return
        self.last_mode, self.last_at = stats.mode, time.monotonic()
        self.context.log.info(stats.summary())
        self.observe(stats)

    def observe(self, stats: "IngestStats") -> None:
        self.context.log_event(dg.AssetObservation(RAW_TOPIC, metadata=_metadata(stats)))


@dg.op(tags={"kind": "kafka"})
def consume_raw_topic(context: dg.OpExecutionContext, config: IngestConfig, logpilot: LogPilotHome,
                      live: LiveIngestion) -> dict:
    """Drain the raw topic from the stored offsets, dropping records at or before T1 (catch-up), then keep up
    (real-time) until the run is terminated, or until caught up / `max_seconds` if configured; rows and
    offsets commit together in DuckDB."""
    observe = _Observer(context)

    def terminating() -> bool:
        run = context.instance.get_run_by_id(context.run_id)
        return run is not None and run.status == dg.DagsterRunStatus.CANCELING

    from logpilot_dagster.stream.worker import run_ingestion

    stats = run_ingestion(live.settings(logpilot), until_caught_up=config.until_caught_up,
                          max_seconds=config.max_seconds or None,
                          t1=datetime.fromisoformat(config.t1) if config.t1 else None, report=context.log.info,
                          progress=observe, should_stop=terminating)
    observe.observe(stats)  # the worker logged its final summary
    context.add_output_metadata(_metadata(stats))
    return stats.as_dict()


@dg.job(tags={"logpilot/phase": "live"}, executor_def=dg.in_process_executor)
def live_ingestion():
    """Catch up from T1, then real time (the same code as `logpilot ingest`), in the run's own process."""
    consume_raw_topic()


def _active_live_run(instance: dg.DagsterInstance) -> dg.DagsterRun | None:
    runs = instance.get_runs(dg.RunsFilter(job_name=live_ingestion.name, statuses=ACTIVE), limit=1)
    return runs[0] if runs else None


def _backoff(last: list[dg.RunRecord]) -> str | None:
    """Why not to launch now, when the latest ``FAILURES_IN_A_ROW`` live runs all failed recently."""
    if len(last) < FAILURES_IN_A_ROW or any(r.dagster_run.status != dg.DagsterRunStatus.FAILURE for r in last):
        return None
    wait = (last[0].end_time or time.time()) + FAILED_BACKOFF_S - time.time()
    if wait <= 0:
        return None
    return (f"the last {FAILURES_IN_A_ROW} live_ingestion runs failed (latest {last[0].dagster_run.run_id[:8]}): "
            f"see its logs; next try in {wait:.0f}s")


def _progress(state_dir) -> str:
    state = live_state.read(live_state.state_file(state_dir))
    if not state:
        return "no progress reported yet"
    return (f"mode {state['mode']}, lag {state['lag']:,}, {state['rate']:,.0f} records/s, {state['inserted']:,} "
            f"rows inserted ({time.time() - state['updated_at']:.0f}s ago)")


@described_sensor("live_ingestion", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def t1_gate(context: dg.SensorEvaluationContext, logpilot: LogPilotHome, live: LiveIngestion):
    """Skip until ``t1_watermark`` has been materialized and a broker is reachable; then keep exactly one
    ``live_ingestion`` run active, launching a new one whenever none is (the first, or after one ended; after
    ``FAILURES_IN_A_ROW`` failures it waits ``FAILED_BACKOFF_S``). Reads T1 from the event log and progress
    from ``state/live.json``: a sensor never opens the DuckDB file."""
    event = context.instance.get_latest_materialization_event(T1_KEY)
    materialization = event.asset_materialization if event else None
    t1 = materialization.metadata.get("t1").value if materialization and "t1" in materialization.metadata else None
    if not t1:
        return dg.SkipReason("waiting for the backfill to publish T1 (t1_watermark)")
    state_dir = logpilot.paths.state_dir
    if not live.bootstrap_servers and announced_bootstrap(announce_file(state_dir)) is None:
        return dg.SkipReason("T1 is published but no broker is up: run `logpilot broker` or set "
                             "LOGPILOT_KAFKA_BOOTSTRAP")
    active = _active_live_run(context.instance)
    if active is not None:
        return dg.SkipReason(f"live_ingestion run {active.run_id[:8]} ({active.status.value}) keeps logs current: "
                             f"{_progress(state_dir)}")
    last = context.instance.get_run_records(dg.RunsFilter(job_name=live_ingestion.name), limit=FAILURES_IN_A_ROW)
    if (backoff := _backoff(last)) is not None:
        return dg.SkipReason(backoff)
    context.log.info(f"no live run active (last: {last[0].dagster_run.run_id[:8]} "
                     f"{last[0].dagster_run.status.value}); launching one"
                     if last else "T1 is published: launching the live run")
    return dg.RunRequest(tags={"logpilot/t1": t1},
                         run_config={"ops": {"consume_raw_topic": {"config": {"t1": t1}}}})
