"""The rule registry: every discovered rule is a version (``<source>@v<n>``) with who proposed it, when, its
validation scores and who accepted it (``format_rule_versions``). Accepting one declares the source in
``sources.yaml`` with its ``rule_id``, upserts ``format_rules`` and refreshes the lock-free
``state/registry.json``, which the re-parse sensor watches."""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb

from logpilot_dagster.discovery.propose import Discovery
from logpilot_dagster.ingest.formats import needs_year
from logpilot_dagster.ingest.registry import SchemaRegistry
from logpilot_dagster.ingest.sources import SourceSpec, load_sources, write_sources
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.warehouse import connect, ensure_schema, upsert
from logpilot_dagster.storage.profile import table_ddl

RULES_SCHEMA = """
CREATE TABLE IF NOT EXISTS format_rule_versions (
    rule_id VARCHAR PRIMARY KEY,
    source_name VARCHAR,
    version INTEGER,
    spec VARCHAR,
    proposed_by VARCHAR,
    proposed_at TIMESTAMP,
    scores VARCHAR,
    notes VARCHAR,
    status VARCHAR,
    accepted_by VARCHAR,
    accepted_at TIMESTAMP
);
"""


@dataclass
class RuleVersion:
    rule_id: str
    source_name: str
    version: int
    spec: dict
    proposed_by: str
    status: str
    scores: dict
    accepted_by: str | None


def ensure_rules_schema(con: duckdb.DuckDBPyConnection) -> None:
    ensure_schema(con)
    con.execute(table_ddl(RULES_SCHEMA))


def spec_for(found: Discovery, name: str, glob: str, service: str | None = None) -> SourceSpec:
    """The source declaration an accepted discovery becomes."""
    candidate = found.candidate
    if candidate is None:
        raise ValueError(f"no candidate rule for {name!r}: {found.explain()}")
    year_from = "path" if candidate.ts_layout and needs_year(candidate.ts_layout) else "header"
    return SourceSpec(name=name, glob=glob, service=service or name, format=candidate.format,
                      ts_layout=candidate.ts_layout, year_from=year_from, keys=candidate.keys)


def record(con: duckdb.DuckDBPyConnection, spec: SourceSpec, found: Discovery, status: str,
           accepted_by: str | None = None) -> str:
    """Store a new version of ``spec.name``'s rule; returns its rule id."""
    ensure_rules_schema(con)
    [(version,)] = con.execute("SELECT coalesce(max(version), 0) + 1 FROM format_rule_versions WHERE source_name = ?",
                               [spec.name]).fetchall()
    rule_id = f"{spec.name}@v{version}"
    spec.rule_id = rule_id
    candidate, validation = found.candidate, found.validation
    con.execute("INSERT INTO format_rule_versions VALUES (?, ?, ?, ?, ?, now(), ?, ?, ?, ?, "
                "CASE WHEN ? = 'accepted' THEN now() END)",
                [rule_id, spec.name, version, json.dumps(spec.to_dict()), candidate.proposed_by if candidate else None,
                 json.dumps(validation.scores if validation else {}),
                 json.dumps((candidate.notes if candidate else []) + (validation.reasons if validation else [])),
                 status, accepted_by, status])
    return rule_id


def _declare(paths: LogPilotPaths, spec: SourceSpec) -> None:
    """Put ``spec`` into sources.yaml (replacing a declaration of the same name) and the registry snapshot."""
    specs = load_sources(paths.sources_file) if paths.sources_file.exists() else []
    specs = [s for s in specs if s.name != spec.name] + [spec]
    write_sources(paths.sources_file, specs)
    registry = SchemaRegistry.load(paths)
    registry.sources[spec.name] = spec
    registry.save_snapshot(paths)


def accept(paths: LogPilotPaths, spec: SourceSpec, found: Discovery, accepted_by: str) -> str:
    """Accept a validated discovery: a new rule version, ``format_rules``, sources.yaml and the snapshot."""
    if not found.accepted:
        raise ValueError(f"rule for {spec.name!r} did not pass validation: {found.explain()}")
    with connect(paths.db_path) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            rule_id = record(con, spec, found, "accepted", accepted_by)
            fmt = spec.header_format().spec()
            upsert(con, "format_rules", "source_name",
                   "SELECT ? AS source_name, ? AS service, ? AS log_format, ? AS regex, ?::VARCHAR[] AS ts_formats, "
                   "? AS timezone, ? AS year_from, ? AS origin, now() AS updated_at",
                        [spec.name, spec.service, spec.format, fmt.get("regex"),
                         [spec.ts_layout] if spec.ts_layout else [], spec.timezone, spec.year_from,
                         f"discovered:{rule_id}"])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    _declare(paths, spec)
    return rule_id


def versions(con: duckdb.DuckDBPyConnection, source_name: str | None = None) -> list[RuleVersion]:
    ensure_rules_schema(con)
    where, params = ("WHERE source_name = ?", [source_name]) if source_name else ("", [])
    rows = con.execute(f"SELECT rule_id, source_name, version, spec, proposed_by, status, scores, accepted_by "
                       f"FROM format_rule_versions {where} ORDER BY source_name, version", params).fetchall()
    return [RuleVersion(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], json.loads(r[6]), r[7]) for r in rows]


def snapshot_rules(paths: LogPilotPaths) -> dict[str, str]:
    """``source name -> rule id`` of discovered rules in the lock-free snapshot (for sensors: no DuckDB)."""
    try:
        data = json.loads(paths.registry_snapshot.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {s["name"]: s["rule_id"] for s in data.get("sources", []) if s.get("rule_id")}
