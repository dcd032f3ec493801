"""Where LogPilot keeps things: everything lives under ``LOGPILOT_HOME`` (default ``data/``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Inputs shipped with the repository (catalog, runbooks, golden sets); used when the home lacks its own copy.
SHIPPED_DATA = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class LogPilotPaths:
    """The on-disk layout under one home directory."""

    home: Path

    @classmethod
    def from_env(cls, home: str | os.PathLike | None = None) -> "LogPilotPaths":
        root = home or os.environ.get("LOGPILOT_HOME") or "data"
        return cls(Path(root).expanduser().resolve())

    @property
    def landing_zone(self) -> Path:
        return self.home / "landing_zone"

    @property
    def db_path(self) -> Path:
        return self.home / "logs.duckdb"

    @property
    def parquet_dir(self) -> Path:
        return self.home / "parquet"

    @property
    def warm_dir(self) -> Path:
        return self.home / "warm"

    @property
    def chroma_dir(self) -> Path:
        return self.home / "chroma"

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def sources_file(self) -> Path:
        return self.home / "sources.yaml"

    def shipped(self, name: str) -> Path:
        """``home/name`` when present, else the copy shipped in the repository's ``data/``."""
        own = self.home / name
        return own if own.exists() else SHIPPED_DATA / name

    @property
    def catalog_csv(self) -> Path:
        return self.shipped("system_catalog.csv")

    @property
    def runbooks_dir(self) -> Path:
        return self.shipped("runbooks")

    @property
    def registry_snapshot(self) -> Path:
        """Lock-free JSON copy of the schema registry, for readers that must not open DuckDB."""
        return self.state_dir / "registry.json"

    def ensure(self) -> "LogPilotPaths":
        for path in (self.home, self.landing_zone, self.parquet_dir, self.state_dir):
            path.mkdir(parents=True, exist_ok=True)
        return self
