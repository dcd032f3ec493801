"""Where discovery gets its samples: a file or directory, undeclared landing-zone files, or ``discovery_queue``
rows of a live source; and the lock-free queue counts that let a sensor notice an unknown live source."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from logpilot_dagster.ingest.sources import load_sources, source_for, year_from_path
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.warehouse import connect

DEFAULT_SAMPLES = 2000


@dataclass
class Samples:
    name: str  # the proposed source name
    glob: str  # the landing-zone glob the declaration gets
    lines: list[str]
    origin: str  # where the samples came from, for the report
    year: int | None = None  # fills timestamps without a year (from the first file's path)


def read_head(path: Path, n: int) -> list[str]:
    """The first ``n`` non-blank lines of a (possibly gzipped) file, undecodable bytes replaced."""
    opener = gzip.open if path.suffix == ".gz" else open
    out: list[str] = []
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.rstrip("\r\n")
            if line.strip():
                out.append(line)
            if len(out) >= n:
                break
    return out


def undeclared_files(paths: LogPilotPaths) -> dict[str, list[Path]]:
    """Landing files that no declared source matches, grouped by their first path component."""
    specs = load_sources(paths.sources_file) if paths.sources_file.exists() else []
    groups: dict[str, list[Path]] = {}
    root = paths.landing_zone
    for path in sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []:
        key = path.relative_to(root).as_posix()
        if source_for(key, specs) is None:
            groups.setdefault(key.split("/")[0] if "/" in key else path.stem, []).append(path)
    return groups


def _from_files(name: str, glob: str, files: list[Path], n: int) -> Samples:
    lines: list[str] = []
    for path in files:
        lines += read_head(path, n - len(lines))
        if len(lines) >= n:
            break
    origin = f"{len(files)} file(s), first {files[0]}" if files else "no files"
    return Samples(name, glob, lines, origin, year_from_path(files[0].as_posix()) if files else None)


def queued_samples(con: duckdb.DuckDBPyConnection, source_name: str, n: int) -> list[str]:
    rows = con.execute("SELECT raw FROM discovery_queue WHERE source_name = ? ORDER BY queued_at, source, "
                       "source_offset LIMIT ?", [source_name, n]).fetchall()
    return [raw for (raw,) in rows]


def gather(paths: LogPilotPaths, target: str, n: int = DEFAULT_SAMPLES, name: str | None = None) -> Samples:
    """Samples for ``target``: a path on disk, an undeclared landing-zone group, or a live source name."""
    path = Path(target)
    if path.exists():
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        try:
            relative = path.resolve().relative_to(paths.landing_zone.resolve()).as_posix()
            top = relative.split("/")[0]
        except ValueError:
            top = None
        source = name or top or (path.name if path.is_dir() else path.name.split(".")[0])
        glob = f"{top}/**/*" if top else f"{source}/**/*"
        return _from_files(source, glob, files, n)
    groups = undeclared_files(paths)
    if target in groups:
        return _from_files(name or target, f"{target}/**/*", groups[target], n)
    if paths.db_path.exists():
        with connect(paths.db_path, read_only=True) as con:
            lines = queued_samples(con, target, n) if _has_queue(con) else []
        if lines:
            return Samples(name or target, f"{name or target}/**/*", lines, "discovery_queue")
    raise FileNotFoundError(f"{target!r} is neither a path, an undeclared landing-zone folder "
                            f"({', '.join(sorted(groups)) or 'none'}) nor a source with queued lines")


def _has_queue(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'discovery_queue'")
                .fetchone()[0])


def queue_counts_file(state_dir: Path) -> Path:
    return state_dir / "discovery_queue.json"


def publish_queue_counts(con: duckdb.DuckDBPyConnection, state_dir: Path) -> dict[str, int]:
    """Write ``source name -> queued lines`` next to the registry snapshot (atomically), for the sensor."""
    counts = dict(con.execute("SELECT source_name, count(*) FROM discovery_queue GROUP BY 1").fetchall())
    state_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=state_dir, suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(counts, fh, sort_keys=True)
    os.replace(tmp, queue_counts_file(state_dir))
    return counts


def read_queue_counts(state_dir: Path) -> dict[str, int]:
    try:
        return json.loads(queue_counts_file(state_dir).read_text())
    except (FileNotFoundError, ValueError):
        return {}
