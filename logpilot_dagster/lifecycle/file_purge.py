"""Files of a purge outside the warehouse and the tiers: staged Parquet, JSON state and any other file under the
home that holds a match, and the landing zone (reported; rewritten on request)."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import zlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from logpilot_dagster.lifecycle.matching import Matcher, PurgeRequest
from logpilot_dagster.lifecycle.object_purge import apply_request
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.object_store import ObjectStore

#: Statistics only on columns that never hold text, so a footer never copies a value.
STATISTICS_COLUMNS = ("ts", "year", "source_offset", "seen_at", "queued_at")


def write_parquet_without_text_stats(table: pa.Table, path: Path) -> None:
    """Atomically replace ``path`` with ``table`` (zstd; min/max statistics on non-text columns only)."""
    tmp = path.with_name(path.name + ".purge")
    stats = [name for name in table.column_names if name in STATISTICS_COLUMNS]
    pq.write_table(table, tmp, compression="zstd", write_statistics=stats)
    os.replace(tmp, path)


def _sql(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _staged_hits(files: list[Path], request: PurgeRequest, matcher: Matcher) -> list[Path]:
    """The staged Parquet files that hold a match (or rows of the service's range), found with DuckDB."""
    if not files:
        return []
    con = duckdb.connect()
    try:
        listing = ", ".join(_sql(str(f)) for f in files)
        source = f"read_parquet([{listing}], filename = true, union_by_name = true)"
        columns = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        names = {name for name, *_ in columns}
        if request.service:
            if not {"service", "ts"} <= names:
                return []
            where = "service = $service AND ts >= $start AND ts < $end"
            params = {"service": request.service, "start": request.start, "end": request.end}
        else:
            if matcher.empty:
                return []
            where = matcher.sql_where([(n, t) for n, t, *_ in columns if n != "filename"])
            params = {"pattern": matcher.re2}
        return [Path(f) for (f,) in con.execute(f"SELECT DISTINCT filename FROM {source} WHERE {where}",
                                                params).fetchall()]
    finally:
        con.close()


def purge_staged_parquet(paths: LogPilotPaths, request: PurgeRequest, matcher: Matcher,
                         apply: bool) -> dict[str, int]:
    """Rewrite the staged Parquet files under ``parquet/`` that hold a match: ``{"files", "rows"}``."""
    files = sorted(paths.parquet_dir.rglob("*.parquet")) if paths.parquet_dir.exists() else []
    touched = {"files": 0, "rows": 0}
    for dataset in sorted({f.parent for f in files}):  # one schema per directory
        for path in _staged_hits([f for f in files if f.parent == dataset], request, matcher):
            table, rows = apply_request(pq.read_table(path), request, matcher)
            if not rows:
                continue
            touched["files"] += 1
            touched["rows"] += rows
            if apply:
                write_parquet_without_text_stats(table, path)
    return touched


def _scrub_json(value, matcher: Matcher):
    if isinstance(value, str):
        return matcher.replace(value)
    if isinstance(value, list):
        return [_scrub_json(v, matcher) for v in value]
    if isinstance(value, dict):
        return {matcher.replace(k): _scrub_json(v, matcher) for k, v in value.items()}
    return value


def _replace_file(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, path.stat().st_mode & 0o777)
    os.replace(tmp, path)


def other_files(paths: LogPilotPaths, skip: list[Path]) -> list[Path]:
    """Every regular file under the home outside ``skip`` (the stores a purge handles on their own)."""
    skip = [p.resolve() for p in skip]
    found = []
    for root, dirs, names in os.walk(paths.home):
        here = Path(root)
        dirs[:] = [d for d in dirs if (here / d).resolve() not in skip]
        found.extend(here / n for n in names if (here / n).resolve() not in skip and (here / n).is_file())
    return sorted(found)


def purge_other_files(paths: LogPilotPaths, matcher: Matcher, skip: list[Path], apply: bool) -> dict[str, list]:
    """JSON state (``state/registry.json``, ``state/shards/*.json`` ...), text files and stray Parquet files
    (e.g. a killed run's scratch) holding a match are re-masked; a binary file that holds one (e.g. another
    tool's SQLite) is only reported as ``residual``."""
    result: dict[str, list] = {"rewritten": [], "residual": []}
    if matcher.empty:
        return result
    for path in other_files(paths, skip):
        shown = matcher.replace(path.relative_to(paths.home).as_posix())
        if path.suffix == ".parquet":  # compressed pages hide a value from a byte search
            table, rows = matcher.mask_table(pq.read_table(path))
            if rows:
                result["rewritten"].append(shown)
                if apply:
                    write_parquet_without_text_stats(table, path)
            continue
        data = path.read_bytes()
        if not matcher.found_in_bytes(data):
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            result["residual"].append(shown)
            continue
        if path.suffix == ".json":
            new = json.dumps(_scrub_json(json.loads(text), matcher), indent=1, sort_keys=True)
        else:
            new = matcher.replace(text)
        if b"\0" in data or new == text:
            result["residual"].append(shown)
            continue
        result["rewritten"].append(shown)
        if apply:
            _replace_file(path, new.encode("utf-8"))
    return result


def _decompress(data: bytes) -> bytes:
    """A gzip file's content, as far as it decodes (a truncated archive gives what it holds)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        return inflater.decompress(data)
    except zlib.error:
        return b""


def purge_landing(store: ObjectStore, matcher: Matcher, apply: bool) -> list[str]:
    """Landing files holding a match (names shown re-masked); ``apply`` rewrites them in place (undecodable
    bytes kept as they are; a file whose name holds the match is renamed)."""
    found = []
    if matcher.empty:
        return found
    for info in list(store.list()):
        with store.open(info.key) as stream:
            raw = stream.read()
        gz = info.key.endswith(".gz")
        data = _decompress(raw) if gz else raw
        text = data.decode("utf-8", errors="surrogateescape")
        if not (matcher.found_in(text) or matcher.found_in(info.key)):
            continue
        new_key = matcher.replace(info.key)
        found.append(new_key)
        if not apply:
            continue
        new = matcher.replace(text).encode("utf-8", errors="surrogateescape")
        with tempfile.TemporaryDirectory(prefix="logpilot-purge-") as tmp:
            local = Path(tmp) / "file"
            local.write_bytes(gzip.compress(new, mtime=0) if gz else new)
            store.put_file(new_key, local)
        if new_key != info.key:
            store.delete(info.key)
    return found
