"""The schema registry: format rules per source and the templates mined so far, with their aliases.

DuckDB tables (``format_rules``, ``templates``, ``template_aliases``) are the record; after each change the load
step writes a plain JSON snapshot (``state/registry.json``) that mining shards, sensors and the stream worker read
without touching the DuckDB file lock.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from logpilot_dagster.ingest.mining import MinerConfig, ServiceMiner
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.ingest.sources import SourceSpec, load_sources
from logpilot_dagster.storage.warehouse import upsert


@dataclass
class SchemaRegistry:
    sources: dict[str, SourceSpec] = field(default_factory=dict)
    templates: dict[str, dict] = field(default_factory=dict)  # id -> {"template", "service"}
    aliases: dict[str, str] = field(default_factory=dict)  # old id -> current id

    def __post_init__(self) -> None:
        self._miners: dict[str, ServiceMiner] = {}

    # -- loading and saving ----------------------------------------------------------------------------------
    @classmethod
    def load(cls, paths: LogPilotPaths) -> "SchemaRegistry":
        """Snapshot if present, with source declarations from sources.yaml taking precedence."""
        registry = cls()
        if paths.registry_snapshot.exists():
            data = json.loads(paths.registry_snapshot.read_text())
            registry.sources = {s["name"]: SourceSpec.from_dict(s) for s in data.get("sources", [])}
            registry.templates = data.get("templates", {})
            registry.aliases = data.get("aliases", {})
        if paths.sources_file.exists():
            for spec in load_sources(paths.sources_file):
                known = registry.sources.get(spec.name)
                if known and spec.ts_layout is None and known.format == spec.format:
                    spec.ts_layout = known.ts_layout  # keep the layout detected earlier
                registry.sources[spec.name] = spec
        return registry

    def save_snapshot(self, paths: LogPilotPaths) -> None:
        paths.state_dir.mkdir(parents=True, exist_ok=True)
        data = {"sources": [s.to_dict() for s in self.sources.values()], "templates": self.templates,
                "aliases": self.aliases}
        fd, tmp = tempfile.mkstemp(dir=paths.state_dir, suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, paths.registry_snapshot)

    def write_to_db(self, con: duckdb.DuckDBPyConnection) -> None:
        """Upsert rules, template texts and aliases (stats are rebuilt from ``logs`` by the loader)."""
        specs = list(self.sources.values())
        rules = pa.table({
            "source_name": [s.name for s in specs], "service": [s.service for s in specs],
            "log_format": [s.format for s in specs],
            "regex": [s.header_format().spec().get("regex") for s in specs],
            "ts_formats": pa.array([[s.ts_layout] if s.ts_layout else [] for s in specs], pa.list_(pa.string())),
            "timezone": [s.timezone for s in specs], "year_from": [s.year_from for s in specs]})
        aliases = pa.table({"alias_id": list(self.aliases), "template_id": list(self.aliases.values())},
                           schema=pa.schema([("alias_id", pa.string()), ("template_id", pa.string())]))
        con.register("rules", rules)
        con.register("aliases", aliases)
        try:
            upsert(con, "format_rules", "source_name",
                   "SELECT *, 'declared' AS origin, now() AS updated_at FROM rules")
            upsert(con, "template_aliases", "alias_id", "SELECT *, now() AS recorded_at FROM aliases")
        finally:
            con.unregister("rules")
            con.unregister("aliases")

    # -- templates ------------------------------------------------------------------------------------------
    def config_for(self, service: str) -> MinerConfig:
        spec = next((s for s in self.sources.values() if s.service == service), None)
        return spec.drain if spec else MinerConfig()

    def miner(self, service: str) -> ServiceMiner:
        """A Drain3 miner for ``service`` seeded with its known templates (cached per registry)."""
        if service not in self._miners:
            seed = sorted(t["template"] for t in self.templates.values() if t["service"] == service)
            self._miners[service] = ServiceMiner(service, self.config_for(service), seed)
        return self._miners[service]

    def active_miners(self) -> list[ServiceMiner]:
        """The miners this registry has handed out (the services seen so far)."""
        return [self._miners[s] for s in sorted(self._miners)]

    def resolve(self, template_id: str) -> str:
        return self.aliases.get(template_id, template_id)

    def add_alias(self, old: str, new: str) -> None:
        if old == new:
            return
        self.aliases[old] = new
        for alias, target in list(self.aliases.items()):
            if target == old:
                self.aliases[alias] = new
        self.templates.pop(old, None)

    def absorb(self, miner: ServiceMiner) -> None:
        """Take a miner's current templates and aliases into the registry."""
        for tid, text in miner.templates().items():
            self.templates[tid] = {"template": text, "service": miner.service}
        for old, new in miner.aliases.items():
            self.add_alias(old, new)

    def merge_shard(self, shard: dict) -> None:
        """Reconcile templates mined by an independent shard: each goes through the canonical miner, so shapes
        that Drain would merge end up under one id, and the shard's ids stay resolvable as aliases."""
        by_service: dict[str, list[tuple[str, str]]] = {}
        for tid, entry in shard.get("templates", {}).items():
            if tid not in self.templates:  # a verbatim known template needs no reconciliation
                by_service.setdefault(entry["service"], []).append((tid, entry["template"]))
        for service, items in sorted(by_service.items()):
            miner = self.miner(service)
            items.sort(key=lambda item: item[1])
            canonical = miner.mine_keys([text for _, text in items])
            self.absorb(miner)
            for (tid, _), final in zip(items, canonical):
                self.add_alias(tid, self.resolve(final))
        for old, new in shard.get("aliases", {}).items():
            self.add_alias(old, self.resolve(new))
        for name, layout in shard.get("layouts", {}).items():
            if name in self.sources and layout and not self.sources[name].ts_layout:
                self.sources[name].ts_layout = layout


def shard_document(miners: list[ServiceMiner]) -> dict:
    """What a mining shard hands to the load step: its templates (with line counts) and aliases."""
    templates, aliases = {}, {}
    for miner in miners:
        counts = {miner.cluster_ids[c.cluster_id]: miner.counts.get(c.cluster_id, 0)
                  for c in miner.drain.clusters if c.cluster_id in miner.cluster_ids}
        for tid, text in miner.templates().items():
            templates[tid] = {"template": text, "service": miner.service, "count": counts.get(tid, 0)}
        aliases.update(miner.aliases)
    return {"templates": templates, "aliases": aliases}


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)
