"""Schema discovery in Dagster: a sensor that re-parses a source's parked lines once per new rule, and one that
starts discovery for an unknown live source once enough of its lines have queued. Sensors read only the
lock-free files under ``state/`` (``registry.json``, ``discovery_queue.json``), never DuckDB."""

import os

import dagster as dg

from logpilot_dagster.defs.resources import LogPilotHome
from logpilot_dagster.defs.sensors import described_sensor
# the domain modules behind the ops and sensors (pyarrow, drain3) are imported where they run

GROUP = "discovery"


class SchemaDiscovery(dg.ConfigurableResource):
    """``min_samples``: queued lines of an unknown live source before discovery starts (and again at each
    doubling while no rule is accepted). ``auto_accept``: accept a rule that passes the validator without a
    person (``accepted_by = "auto"``); off by default, so a person runs ``logpilot discover NAME --accept``."""

    min_samples: int = 200
    samples: int = 2000
    auto_accept: bool = False


class SourceConfig(dg.Config):
    source_name: str


@dg.op(tags={"kind": "duckdb"}, pool="duckdb_writer")
def reparse_parked_lines(context: dg.OpExecutionContext, config: SourceConfig, logpilot: LogPilotHome) -> dict:
    """Move the source's quarantined and queued lines that its current rule parses into `logs`."""
    from logpilot_dagster.discovery.reparse import reparse_source  # pyarrow, drain3: not at code location load

    result = reparse_source(logpilot.paths, config.source_name)
    context.add_output_metadata({"rule_id": result.rule_id or "", "candidates": result.candidates,
                                 "moved": result.moved, "still_failing": result.still_failing})
    return {"moved": result.moved, "still_failing": result.still_failing}


@dg.job(tags={"logpilot/phase": "discovery"})
def reparse_discovered():
    """Re-parse one source's parked lines under its newly accepted rule (exactly once per line)."""
    reparse_parked_lines()


@dg.op(tags={"kind": "python"}, pool="duckdb_writer")
def discover_source_rule(context: dg.OpExecutionContext, config: SourceConfig, logpilot: LogPilotHome,
                         discovery: SchemaDiscovery) -> dict:
    """Propose and validate a rule from the source's queued lines; record it (accept it when configured)."""
    from logpilot_dagster.discovery.service import run_discovery

    outcome = run_discovery(logpilot.paths, config.source_name, discovery.samples,
                            accept_by="auto" if discovery.auto_accept else None, record_proposal=True)
    context.log.info(outcome.report())
    context.add_output_metadata({"accepted_by_validator": outcome.found.accepted, "rule_id": outcome.rule_id or "",
                                 "verdict": outcome.found.explain()})
    return {"rule_id": outcome.rule_id, "accepted": outcome.found.accepted}


@dg.job(tags={"logpilot/phase": "discovery"})
def discover_live_source():
    """Schema discovery for one unknown live source from its `discovery_queue` rows."""
    discover_source_rule()


@described_sensor("reparse_discovered", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def discovered_rules(context: dg.SensorEvaluationContext, logpilot: LogPilotHome):
    """One re-parse run per accepted rule version (run key ``reparse:<rule id>``), from the registry snapshot."""
    from logpilot_dagster.discovery.rules import snapshot_rules

    rules = snapshot_rules(logpilot.paths)
    if not rules:
        return dg.SkipReason("no discovered rules in state/registry.json")
    return [dg.RunRequest(run_key=f"reparse:{rule_id}", tags={"logpilot/rule": rule_id},
                          run_config={"ops": {"reparse_parked_lines": {"config": {"source_name": name}}}})
            for name, rule_id in sorted(rules.items())]


@described_sensor("discover_live_source", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def unknown_live_sources(context: dg.SensorEvaluationContext, logpilot: LogPilotHome, discovery: SchemaDiscovery):
    """Discovery for a live key no source declares, once ``min_samples`` of its lines have queued (again at
    2x, 4x... while none is accepted: run key ``discover:<name>:<doubling>``)."""
    from logpilot_dagster.discovery.samples import read_queue_counts

    paths = logpilot.paths
    declared = set(logpilot.registry().sources)
    due = {name: n for name, n in read_queue_counts(paths.state_dir).items()
           if name not in declared and n >= discovery.min_samples}
    if not due:
        return dg.SkipReason(f"no unknown live source has {discovery.min_samples} queued lines")
    return [dg.RunRequest(run_key=f"discover:{name}:{(n // discovery.min_samples).bit_length()}",
                          run_config={"ops": {"discover_source_rule": {"config": {"source_name": name}}}})
            for name, n in sorted(due.items())]


def discovery_resource() -> SchemaDiscovery:
    """Settings from ``LOGPILOT_DISCOVERY_MIN_SAMPLES`` / ``LOGPILOT_DISCOVERY_AUTO_ACCEPT`` when set."""
    settings = {}
    if os.environ.get("LOGPILOT_DISCOVERY_MIN_SAMPLES"):
        settings["min_samples"] = dg.EnvVar.int("LOGPILOT_DISCOVERY_MIN_SAMPLES")
    if os.environ.get("LOGPILOT_DISCOVERY_AUTO_ACCEPT"):
        settings["auto_accept"] = dg.EnvVar.bool("LOGPILOT_DISCOVERY_AUTO_ACCEPT")
    return SchemaDiscovery(**settings)
