"""Source declarations (``$LOGPILOT_HOME/sources.yaml``): which files are which service, in which format.

```yaml
sources:
  - name: payments-api            # also the Kafka record key for live lines
    glob: "payments-api/**/*.log*" # relative to the landing zone (local dir or S3 prefix)
    service: payments-api
    format: "<Date> <Time> <Level> \\[<Thread>\\] <Component>: <Content>"   # or jsonl | logfmt | regex:<RE2>
    keys: {ts: "@t", level: lvl, message: body}   # jsonl/logfmt only: which key holds what (optional)
    ts_layout: "%Y-%m-%d %H:%M:%S,%g"   # optional: detected from samples when omitted
    timezone: UTC
    year_from: path                # path (a 4-digit year in the path) | header
    drain: {sim_th: 0.7, depth: 5, masks: [], generic_masks: true, wildcard_aware: true, split_values: 3}  # optional
```
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from logpilot_dagster.ingest.formats import HeaderFormat, make_format
from logpilot_dagster.ingest.mining import MinerConfig

#: The one mining configuration every source gets unless its declaration overrides it.
MINING_DEFAULTS = MinerConfig()
YEAR_IN_PATH = re.compile(r"(?:^|[/_=.-])((?:19|20)\d{2})(?=[/_.-]|$)")


@dataclass
class SourceSpec:
    """One declared source."""

    name: str
    glob: str
    service: str
    format: str
    ts_layout: str | None = None
    timezone: str = "UTC"
    year_from: str = "path"
    drain: MinerConfig = field(default_factory=MinerConfig)
    keys: dict | None = None
    rule_id: str | None = None  # the accepted discovery rule this declaration came from

    @classmethod
    def from_dict(cls, raw: dict) -> "SourceSpec":
        drain = raw.get("drain") or {}
        if raw.get("year_from", "path") not in ("path", "header"):
            raise ValueError(f"source {raw.get('name')!r}: year_from must be 'path' or 'header'")
        return cls(
            name=raw["name"], glob=raw["glob"], service=raw.get("service", raw["name"]), format=raw["format"],
            ts_layout=raw.get("ts_layout"), timezone=raw.get("timezone", "UTC"),
            year_from=raw.get("year_from", "path"),
            drain=MinerConfig(sim_th=float(drain.get("sim_th", MINING_DEFAULTS.sim_th)),
                              depth=int(drain.get("depth", MINING_DEFAULTS.depth)),
                              masks=tuple(drain.get("masks", ())), generic_masks=bool(drain.get("generic_masks", True)),
                              wildcard_aware=bool(drain.get("wildcard_aware", True)),
                              split_values=int(drain.get("split_values", MINING_DEFAULTS.split_values))),
            keys=raw.get("keys"), rule_id=raw.get("rule_id"),
        )

    def to_dict(self) -> dict:
        return {"name": self.name, "glob": self.glob, "service": self.service, "format": self.format,
                "ts_layout": self.ts_layout, "timezone": self.timezone, "year_from": self.year_from,
                "drain": {"sim_th": self.drain.sim_th, "depth": self.drain.depth, "masks": list(self.drain.masks),
                          "generic_masks": self.drain.generic_masks, "wildcard_aware": self.drain.wildcard_aware,
                          "split_values": self.drain.split_values},
                **({"keys": self.keys} if self.keys else {}), **({"rule_id": self.rule_id} if self.rule_id else {})}

    def header_format(self) -> HeaderFormat:
        return make_format(self.format, self.ts_layout, self.timezone, self.keys)

    def matches(self, relative_path: str) -> bool:
        pattern = self.glob
        return fnmatch.fnmatch(relative_path, pattern) or (
            "**/" in pattern and fnmatch.fnmatch(relative_path, pattern.replace("**/", "")))


def load_sources(path: Path) -> list[SourceSpec]:
    if not path.exists():
        raise FileNotFoundError(f"no source declarations at {path}; run `logpilot demo` or write sources.yaml")
    data = yaml.safe_load(path.read_text()) or {}
    specs = [SourceSpec.from_dict(s) for s in data.get("sources", [])]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate source names in {path}")
    return specs


def write_sources(path: Path, specs: list[SourceSpec]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"sources": [s.to_dict() for s in specs]}, sort_keys=False))


def source_for(relative_path: str, specs: list[SourceSpec]) -> SourceSpec | None:
    """The first declared source whose glob matches a landing-zone path."""
    return next((s for s in specs if s.matches(relative_path)), None)


def year_from_path(relative_path: str) -> int | None:
    match = YEAR_IN_PATH.search(relative_path)
    return int(match.group(1)) if match else None
