"""The per-year backfill: stage (read, parse, mask, mine, Parquet) in parallel, then load into DuckDB serially.

``stage_year`` never opens the DuckDB file, so several years can stage at once; it writes
``parquet/logs/year=Y/*.parquet``, ``parquet/quarantine/year=Y/*.parquet`` and a shard document
``state/shards/year=Y.json`` (templates, aliases, files, counts). ``load_year`` then replaces the year's rows in
one transaction from a single ``read_parquet`` over every file of the year, whichever shard wrote it. Staging and
loading a year hold the year's lock (``state/locks/year=Y.lock``), so two runs of one year take turns.

In the lake profile (``storage.profile``) years load from several processes at once, without the lock: the
year's rows commit in one transaction guarded by the year (two loads of one year conflict and one retries),
then the shared registry tables and ``templates`` in a second one guarded by ``templates``; both are retried on
DuckLake commit conflicts.

A landing file that cannot be read is one quarantine record at offset 0 with the reason (``link_outside_store``,
``dangling_link``, ``not_a_file``, ``unreadable_file``, ``no_time_layout``); one that belongs to no year
(``undated_file``) is quarantined by every year's load, outside that year's line accounting.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from logpilot_dagster.ingest.formats import LoghubFormat, needs_year
from logpilot_dagster.storage import profile
from logpilot_dagster.storage.file_lock import hold
from logpilot_dagster.storage.object_store import ObjectStore
from logpilot_dagster.privacy.pii import PIIMasker
from logpilot_dagster.ingest.reader import LineBatch, Quarantined, read_lines
from logpilot_dagster.ingest.registry import SchemaRegistry, shard_document, write_json
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.ingest.sources import SourceSpec, source_for, year_from_path
from logpilot_dagster.ingest.template_text import refit_params
from logpilot_dagster.ingest.transform import LineTransformer, Prepared, quarantine_table
from logpilot_dagster.storage.warehouse import connect, ensure_schema

Progress = Callable[[int], None]

HEAD_LINES = 200
HEAD_BYTES = 1024 * 1024
#: How long a run waits for another run of the same year to finish staging or loading it.
YEAR_LOCK_WAIT_S = 3600.0


@dataclass
class LandingFile:
    key: str
    size: int
    source_name: str | None
    year: int | None
    problem: str | None = None  # why the file is quarantined whole instead of read
    detail: str = ""

    @property
    def gz(self) -> bool:
        return self.key.endswith(".gz")


def head_lines(store: ObjectStore, key: str, n: int = HEAD_LINES) -> list[str]:
    """The first ``n`` decodable lines of a landing file (reads only its first ``HEAD_BYTES`` or so)."""
    lines: list[str] = []
    with closing(store.open(key)) as stream:
        for batch in read_lines(stream, key, gz=key.endswith(".gz"), batch_lines=n, chunk_bytes=64 * 1024,
                                limit=HEAD_BYTES):
            lines += batch.lines
            if len(lines) >= n:
                break
    return lines[:n]


def _header_year(store: ObjectStore, key: str, spec: SourceSpec) -> int | None:
    """Year of the first line with a parseable timestamp (for sources whose year is in the header); raises
    ``ValueError`` when the source's time layout cannot tell one."""
    lines = head_lines(store, key)
    if not lines:
        return None
    fmt = spec.header_format()
    if isinstance(fmt, LoghubFormat) and fmt.ts_layout is None:
        fmt.ts_layout = fmt.detect_layout(pa.array(lines), None)
        if fmt.ts_layout is None:
            raise ValueError(f"no known time layout fits the first lines of {key}")
    if isinstance(fmt, LoghubFormat) and needs_year(fmt.ts_layout):
        raise ValueError(f"the time layout {fmt.ts_layout!r} of source {spec.name!r} has no year and the path has none")
    parsed = fmt.parse(pa.array(lines), None)
    years = [ts.year for ts, ok in zip(parsed.ts.to_pylist(), parsed.ok.to_pylist()) if ok]
    return years[0] if years else None


def list_landing_files(store: ObjectStore, registry: SchemaRegistry) -> list[LandingFile]:
    """Every landing file with its declared source (None when undeclared), its year (None when neither the path
    nor the first lines tell one) and, for a file that must not or cannot be read, the reason. Never raises for
    one file."""
    specs = list(registry.sources.values())
    files = []
    for info in store.list():
        spec = source_for(info.key, specs)
        year = year_from_path(info.key)
        problem, detail = info.problem, info.detail
        if problem is None and spec is not None and (spec.year_from == "header" or year is None):
            try:
                year = _header_year(store, info.key, spec) or year
            except (ValueError, duckdb.Error) as exc:
                detail = str(exc)
            except Exception as exc:  # one file that cannot be read (gone, no permission, S3 error) fails nothing
                problem, detail = "unreadable_file", f"{type(exc).__name__}: {exc}"
        if year is None and problem is None:
            problem = "undated_file"
            detail = detail or ("no year in the path" + (f" and none in the first {HEAD_LINES} lines" if spec else
                                                         " and no source declared"))
        files.append(LandingFile(info.key, info.size, spec.name if spec else None, year, problem, detail))
    return files


def ensure_layouts(store: ObjectStore, registry: SchemaRegistry, files: list[LandingFile], tries: int = 5) -> None:
    """Detect the time layout of Loghub-style sources that do not declare one, from the first lines of up to
    ``tries`` of their files; when none fits, the source's files are marked ``no_time_layout``."""
    for spec in registry.sources.values():
        fmt = spec.header_format()
        if spec.ts_layout or not isinstance(fmt, LoghubFormat):
            continue
        mine = [f for f in files if f.source_name == spec.name and f.problem is None]
        for sample in mine[:tries]:
            spec.ts_layout = fmt.detect_layout(pa.array(head_lines(store, sample.key), pa.string()), sample.year)
            if spec.ts_layout is not None:
                break
        if spec.ts_layout is None:
            for f in mine:
                f.problem = "no_time_layout"
                f.detail = (f"no known time layout fits the first lines of {len(mine[:tries])} files of source "
                            f"{spec.name!r}; set ts_layout in sources.yaml")


@dataclass
class StageResult:
    year: int
    files: list[str] = field(default_factory=list)
    undated: list[str] = field(default_factory=list)
    lines_read: int = 0
    rows: int = 0
    quarantined: int = 0
    stats: Counter = field(default_factory=Counter)
    templates: int = 0
    seconds: float = 0.0
    timings: Counter = field(default_factory=Counter)  # busy seconds per stage (they overlap across threads)

    @property
    def lines_per_s(self) -> float:
        return self.lines_read / self.seconds if self.seconds else 0.0


def year_dirs(paths: LogPilotPaths, year: int) -> tuple[Path, Path, Path]:
    return (paths.parquet_dir / "logs" / f"year={year}", paths.parquet_dir / "quarantine" / f"year={year}",
            paths.state_dir / "shards" / f"year={year}.json")


def year_lock(paths: LogPilotPaths, year: int, what: str, wait_s: float):
    """The year's lock, held while staging or loading it (another run of the year waits up to ``wait_s``)."""
    return hold(paths.state_dir / "locks" / f"year={year}.lock", f"{what} year {year}", wait_s)


class ParquetWriter:
    """Writes Parquet files on one background thread (pyarrow releases the GIL, so parsing the next batch
    overlaps the zstd encoding of this one); at most ``depth`` files wait, which keeps memory bounded.
    ``timings`` gets the seconds spent writing (``parquet_write``) and waiting for the writer (``parquet_wait``)."""

    def __init__(self, timings: Counter | None = None, depth: int = 2):
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet")
        self.pending: deque[Future] = deque()
        self.depth = depth
        self.timings = Counter() if timings is None else timings

    def _write(self, table: pa.Table, path: Path) -> None:
        clock = time.perf_counter()
        pq.write_table(table, path, compression="zstd")
        self.timings["parquet_write"] += time.perf_counter() - clock

    def write(self, table: pa.Table, path: Path) -> None:
        self.pending.append(self.pool.submit(self._write, table, path))
        clock = time.perf_counter()
        while len(self.pending) > self.depth:
            self.pending.popleft().result()
        self.timings["parquet_wait"] += time.perf_counter() - clock

    def close(self) -> None:
        """Wait for every file (re-raising a failed write)."""
        clock = time.perf_counter()
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown()
            self.timings["parquet_wait"] += time.perf_counter() - clock


def _quarantine_rows(items: list[Quarantined], masker: PIIMasker) -> pa.Table:
    return quarantine_table([q.source for q in items], [q.source_offset for q in items],
                            [q.raw for q in items], [q.reason for q in items], masker)


def stage_year(paths: LogPilotPaths, store: ObjectStore, registry: SchemaRegistry, year: int,
               progress: Progress | None = None, batch_lines: int = 100_000,
               lock_wait_s: float = YEAR_LOCK_WAIT_S) -> StageResult:
    """Read, parse, mask and mine one year's landing files into Parquet (never touches DuckDB)."""
    with year_lock(paths, year, "stage", lock_wait_s):
        return _stage_year(paths, store, registry, year, progress, batch_lines)


def _stage_year(paths: LogPilotPaths, store: ObjectStore, registry: SchemaRegistry, year: int,
                progress: Progress | None, batch_lines: int) -> StageResult:
    start = time.perf_counter()
    listed = list_landing_files(store, registry)
    files = [f for f in listed if f.year == year]
    undated = [f for f in listed if f.year is None]
    ensure_layouts(store, registry, files)
    logs_dir, quarantine_dir, shard_path = year_dirs(paths, year)
    tmp_logs, tmp_q = logs_dir.with_name(logs_dir.name + ".tmp"), quarantine_dir.with_name(quarantine_dir.name + ".tmp")
    for d in (tmp_logs, tmp_q):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    masker = PIIMasker()
    transformer = LineTransformer(registry, masker)
    result = StageResult(year)
    writer = ParquetWriter(result.timings)

    def prepare(item: tuple[LandingFile, LineBatch, int]) -> tuple[LandingFile, LineBatch, int, Prepared | None]:
        entry, batch, part = item
        if not batch.lines or entry.source_name is None:
            return entry, batch, part, None
        lines = pa.table({"source": pa.array([entry.key] * len(batch), pa.string()),
                          "source_offset": pa.array(batch.offsets, pa.int64()), "raw": pa.array(batch.lines)})
        return entry, batch, part, transformer.prepare(entry.source_name, lines, year)

    try:
        with closing(lookahead(_batches(store, files, masker, result, batch_lines), prepare)) as staged:
            for entry, batch, part, prepared in staged:
                _stage_batch(transformer, writer, entry, batch, prepared, (tmp_logs, tmp_q, part), result)
                if progress and entry.problem is None:
                    progress(batch.records)
        if undated:  # every year's load replaces these rows; they are no year's lines
            result.undated = [masker.mask(f.key) for f in undated]
            writer.write(_quarantine_rows([_refusal(f) for f in undated], masker), tmp_q / "undated.parquet")
            result.stats["undated_files"] = len(undated)
    finally:
        writer.close()
    shard = shard_document(registry.active_miners())
    result.templates = len(shard["templates"])
    result.seconds = time.perf_counter() - start
    shard.update({"year": year, "layouts": {n: s.ts_layout for n, s in registry.sources.items()},
                  "files": result.files, "undated": result.undated, "lines_read": result.lines_read,
                  "rows": result.rows, "quarantined": result.quarantined, "stats": dict(result.stats),
                  "seconds": result.seconds, "timings": {k: round(v, 3) for k, v in result.timings.items()}})
    for final, tmp in ((logs_dir, tmp_logs), (quarantine_dir, tmp_q)):
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    write_json(shard_path, shard)
    return result


def _refusal(entry: LandingFile) -> Quarantined:
    """The one quarantine record of a file that is not read, saying why."""
    return Quarantined(entry.key, 0, entry.detail, entry.problem)


def _batches(store: ObjectStore, files: list[LandingFile], masker: PIIMasker, result: StageResult,
             batch_lines: int) -> Iterator[tuple[LandingFile, LineBatch, int]]:
    """Every file's batches in key order, numbered; a file that cannot be read is one batch with its refusal."""
    part = 0
    for entry in sorted(files, key=lambda f: f.key):
        result.files.append(masker.mask(entry.key))  # as logs.source: the shard and loaded_files name it so
        try:
            stream = store.open(entry.key) if entry.problem is None else None
        except OSError as exc:  # gone or unreadable since it was listed
            entry.problem, entry.detail = "unreadable_file", f"{type(exc).__name__}: {exc}"
        if entry.problem is not None:
            part += 1
            yield entry, LineBatch(entry.key, quarantined=[_refusal(entry)]), part
            continue
        with closing(stream):
            batches = read_lines(stream, entry.key, entry.gz, batch_lines)
            while True:
                clock = time.perf_counter()
                batch = next(batches, None)
                result.timings["read"] += time.perf_counter() - clock
                if batch is None:
                    break
                part += 1
                yield entry, batch, part


T = TypeVar("T")
R = TypeVar("R")


def lookahead(items: Iterable[T], work: Callable[[T], R], depth: int = 2) -> Iterator[R]:
    """``work(item)`` for each item, in order, computed on one background thread up to ``depth`` items ahead of
    the consumer (Arrow and DuckDB release the GIL, so preparing the next batch overlaps mining this one).
    Closing it closes ``items`` and waits for the work under way."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare")
    pending: deque[Future] = deque()
    try:
        for item in items:
            pending.append(pool.submit(work, item))
            while len(pending) > depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)
        if hasattr(items, "close"):
            items.close()


def _stage_batch(transformer: LineTransformer, writer: ParquetWriter, entry: LandingFile, batch: LineBatch,
                 prepared: Prepared | None, target: tuple[Path, Path, int], result: StageResult) -> None:
    logs_dir, quarantine_dir, part = target
    result.lines_read += batch.records
    quarantined = list(batch.quarantined)
    for q in quarantined:
        result.stats[f"quarantine.{q.reason}"] += 1
        if q.lines > 1:
            result.stats["blank_lines_folded"] += q.lines - 1
    if batch.lines and entry.source_name is None:
        quarantined += [Quarantined(entry.key, o, line, "no_source_declared")
                        for o, line in zip(batch.offsets, batch.lines)]
        result.stats["quarantine.no_source_declared"] += len(batch.lines)
    elif prepared is not None:
        out = transformer.complete(prepared)
        result.stats.update(out.stats)
        result.timings.update(out.timings)
        result.rows += out.rows.num_rows
        if out.rows.num_rows:
            writer.write(out.rows, logs_dir / f"part-{part:05d}.parquet")
        if out.quarantine.num_rows:
            writer.write(out.quarantine, quarantine_dir / f"q-{part:05d}.parquet")
            result.quarantined += out.quarantine.num_rows
    if quarantined:
        writer.write(_quarantine_rows(quarantined, transformer.masker), quarantine_dir / f"part-{part:05d}.parquet")
        result.quarantined += len(quarantined)


@dataclass
class LoadResult:
    year: int
    rows: int
    quarantined: int
    lines_read: int
    templates: int
    seconds: float


def load_year(paths: LogPilotPaths, registry: SchemaRegistry, year: int,
              lock_wait_s: float = YEAR_LOCK_WAIT_S,
              also: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> LoadResult:
    """Replace one year in DuckDB from its staged Parquet in a single transaction; refresh registry and stats.
    ``also(con)`` runs at the end of that transaction (embedded profile: the caller refreshes views there)."""
    if profile.is_lake():
        return _load_year(paths, registry, year, None)
    with year_lock(paths, year, "load", lock_wait_s):
        return _load_year(paths, registry, year, also)


def _load_year(paths: LogPilotPaths, registry: SchemaRegistry, year: int,
               also: Callable[[duckdb.DuckDBPyConnection], None] | None) -> LoadResult:
    start = time.perf_counter()
    logs_dir, quarantine_dir, shard_path = year_dirs(paths, year)
    if not shard_path.exists():
        raise FileNotFoundError(f"year {year} has not been staged ({shard_path} missing)")
    shard = json.loads(shard_path.read_text())
    registry.merge_shard(shard)
    files = shard["files"]
    logs_glob = str(logs_dir / "*.parquet").replace("'", "''")
    q_glob = str(quarantine_dir / "*.parquet").replace("'", "''")
    has_logs = any(logs_dir.glob("*.parquet"))
    has_q = any(quarantine_dir.glob("*.parquet"))

    def write_year(con) -> tuple[int, int]:
        profile.guard(con, f"year={year}")
        con.execute("CREATE OR REPLACE TEMP TABLE year_files AS SELECT source FROM loaded_files WHERE year = ? "
                    "UNION SELECT unnest(?::VARCHAR[])", [year, files + shard.get("undated", []) or [""]])
        replace_year_rows(con, year, logs_glob if has_logs else None)
        con.execute("DELETE FROM quarantine WHERE source IN (SELECT source FROM year_files)")
        if has_q:
            con.execute(f"INSERT INTO quarantine SELECT source, source_offset, raw, reason, seen_at "
                        f"FROM read_parquet('{q_glob}')")
        con.execute("DELETE FROM loaded_files WHERE year = ?", [year])
        con.execute("INSERT INTO loaded_files SELECT ?, unnest(?::VARCHAR[]), now()", [year, files])
        con.execute("DROP TABLE year_files")
        return con.execute(
            "SELECT (SELECT count(*) FROM logs WHERE year = ? AND source IN (SELECT source FROM loaded_files "
            "WHERE year = ?)), (SELECT count(*) FROM quarantine WHERE source IN (SELECT source FROM loaded_files "
            "WHERE year = ?))", [year, year, year]).fetchone()

    def write_shared(con) -> None:
        profile.guard(con, "templates")
        # every alias, not only this load's: a concurrent load may have stored rows under an alias that another
        # load's registry brought after this one's rows were written
        con.execute("CREATE TEMP TABLE aliases_before AS SELECT alias_id, template_id FROM template_aliases "
                    "WHERE false")
        registry.write_to_db(con)
        refresh_templates(con, registry, logs_glob if has_logs else None)

    if profile.is_lake():  # two transactions, each retried on a conflict: see the module docstring
        with connect(paths.db_path) as con:
            ensure_schema(con)
            profile.register_guards(con, [f"year={year}", "templates"])
        rows, quarantined = profile.retry_conflicts(lambda: _in_transaction(paths, write_year), f"load year {year}")
        profile.retry_conflicts(lambda: _in_transaction(paths, write_shared), f"templates after year {year}")
    else:
        def whole_year(con) -> tuple[int, int]:
            con.execute("CREATE TEMP TABLE aliases_before AS SELECT alias_id, template_id FROM template_aliases")
            registry.write_to_db(con)
            counts = write_year(con)
            refresh_templates(con, registry, logs_glob if has_logs else None)
            if also is not None:
                also(con)
            return counts

        rows, quarantined = _in_transaction(paths, whole_year)
    registry.save_snapshot(paths)
    return LoadResult(year, rows, quarantined, shard["lines_read"], len(registry.templates),
                      time.perf_counter() - start)


def _in_transaction(paths: LogPilotPaths, work: Callable[[duckdb.DuckDBPyConnection], object]):
    """``work(con)`` in one transaction on a fresh connection (schema ensured); committed, or rolled back."""
    with connect(paths.db_path) as con:
        ensure_schema(con)
        con.execute("BEGIN TRANSACTION")
        try:
            result = work(con)
            con.execute("COMMIT")
            return result
        except BaseException:
            profile.rollback(con)
            raise


def replace_year_rows(con, year: int, logs_glob: str | None) -> None:
    """Make the year's file rows equal the staged Parquet, inside the caller's transaction: delete them, then
    insert the staged rows in their staged order, which is sorted (files by name, lines by byte offset): no sort
    step, so memory stays bounded (5M rows: 0.33 GiB peak vs 1.9 GiB with ``ORDER BY source, source_offset``).

    ``logs`` has no key (see ``storage.warehouse.SCHEMA``): ids stay unique because a year's file rows are only
    ever written here, all of them at once, after the old ones went. Both statements touch the year alone, so
    the cost follows the year's size, not the history's.
    """
    con.execute("DELETE FROM logs WHERE year = ? AND source IN (SELECT source FROM year_files)", [year])
    if logs_glob is None:
        return
    con.execute(f"""
        INSERT INTO logs
        SELECT p.event_id, p.ts, p.service, p.level, coalesce(a.template_id, p.template_id) AS template_id,
               p.message, p.params, p.source, p.source_offset, p.year, p.component
        FROM read_parquet('{logs_glob}') p LEFT JOIN template_aliases a ON a.alias_id = p.template_id""")


def refresh_templates(con, registry: SchemaRegistry, logs_glob: str | None) -> None:
    """Point old ids in ``logs`` at their current template, rebuild ``templates`` with stats from ``logs`` and
    recompute the params of the rows whose template moved: rows repointed here, and the year's staged rows
    (``logs_glob``) that were stored under their alias' target.

    Only aliases this load added or changed (``template_aliases`` minus the caller's ``aliases_before``) can
    still be in ``logs``, so the repointing reads the history only when there are some. Templates that only the
    live worker has mined (in ``templates`` but not in the registry) are kept."""
    con.execute("CREATE OR REPLACE TEMP TABLE moved (event_id VARCHAR)")
    if logs_glob is not None:
        con.execute(f"INSERT INTO moved SELECT p.event_id FROM read_parquet('{logs_glob}') p "
                    "JOIN template_aliases a ON a.alias_id = p.template_id")
    con.execute("""CREATE TEMP TABLE new_aliases AS SELECT alias_id, template_id FROM template_aliases
                   EXCEPT SELECT alias_id, template_id FROM aliases_before""")
    if con.execute("SELECT count(*) FROM new_aliases").fetchone()[0]:
        con.execute("INSERT INTO moved SELECT event_id FROM logs "
                    "WHERE template_id IN (SELECT alias_id FROM new_aliases)")
        con.execute("UPDATE logs SET template_id = a.template_id FROM new_aliases a WHERE logs.template_id = a.alias_id")
    con.execute("DROP TABLE new_aliases")
    con.execute("DROP TABLE aliases_before")
    defs = pa.table({"template_id": list(registry.templates),
                     "template": [t["template"] for t in registry.templates.values()],
                     "service": [t["service"] for t in registry.templates.values()]})
    con.register("registry_defs", defs)
    con.execute("""
        CREATE TEMP TABLE template_defs AS
        SELECT * FROM registry_defs
        UNION ALL
        SELECT template_id, template, service FROM templates
        WHERE template_id NOT IN (SELECT template_id FROM registry_defs)
          AND template_id NOT IN (SELECT alias_id FROM template_aliases)""")
    con.unregister("registry_defs")
    con.execute("DELETE FROM templates")
    con.execute("""
        INSERT INTO templates
        SELECT d.template_id, d.template, d.service, s.first_seen, s.last_seen, coalesce(s.n, 0)
        FROM template_defs d LEFT JOIN (
            SELECT template_id, min(ts) AS first_seen, max(ts) AS last_seen, count(*) AS n FROM logs GROUP BY 1
        ) s USING (template_id)""")
    con.execute("DROP TABLE template_defs")
    refit_params(con, "SELECT event_id FROM moved")
    con.execute("DROP TABLE moved")


def load_catalog(paths: LogPilotPaths) -> int:
    """Replace ``system_catalog`` from the CSV (system_name, department, owner_email, criticality)."""
    with connect(paths.db_path) as con:
        ensure_schema(con)
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM system_catalog")
        con.execute("INSERT INTO system_catalog SELECT system_name, department, owner_email, criticality "
                    "FROM read_csv(?, header = true, all_varchar = true)", [str(paths.catalog_csv)])
        con.execute("COMMIT")
        return con.execute("SELECT count(*) FROM system_catalog").fetchone()[0]


def backfill_t1(paths: LogPilotPaths) -> datetime | None:
    """T1: the latest event time among rows that came from landing files (not from the live stream)."""
    with connect(paths.db_path, read_only=True) as con:
        return con.execute("SELECT max(ts) FROM logs WHERE source IN (SELECT source FROM loaded_files)").fetchone()[0]


def published_t1(paths: LogPilotPaths) -> datetime | None:
    """T1 as ``t1_watermark`` published it (``state/t1.json``), else from the warehouse, else None."""
    try:
        return datetime.fromisoformat(json.loads((paths.state_dir / "t1.json").read_text())["t1"])
    except FileNotFoundError:
        return backfill_t1(paths) if paths.db_path.exists() else None
