"""One tiering run: retention, hot → warm, warm → cold, expiry of restored copies, garbage collection.

Every move follows the same crash-safe protocol: (1) write the object to a content-addressed key and verify it
in the store (rows, sha256); (2) one DuckDB transaction changes the catalog, deletes what left the hotter tier
and refreshes ``logs_all``; (3) after the commit, objects no longer in the catalog are deleted. A crash before
(2) leaves an object the catalog does not know (deleted by the next run's garbage collection); a crash after
(2) leaves only such garbage. A second run finds nothing to do.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from logpilot_dagster.lifecycle.catalog import ensure_lifecycle_schema
from logpilot_dagster.lifecycle.crash import crash_point
from logpilot_dagster.lifecycle.objects import ROW_GROUP_ROWS, ObjectWriter, WrittenObject, object_key
from logpilot_dagster.lifecycle.settings import COLD, RESTORED, WARM, TierStoreSettings
from logpilot_dagster.lifecycle.views import logs_columns, refresh_logs_all
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.object_store import ObjectStore
from logpilot_dagster.storage.warehouse import HeldConnection


@dataclass(frozen=True)
class TieringPolicy:
    """Ages (days before the run's ``now``): hot rows older than ``warm_after_days`` go warm, warm objects whose
    newest row is older than ``cold_after_days`` go cold; with ``delete_after_days`` rows and objects older
    than that are deleted from every tier (objects whole: retention is exact in hot, by month elsewhere).
    ``restore_days``: how long a restored cold object stays readable."""

    warm_after_days: float = 30
    cold_after_days: float = 365
    delete_after_days: float | None = None
    restore_days: int = 7

    def __post_init__(self) -> None:
        if not 0 <= self.warm_after_days <= self.cold_after_days:
            raise ValueError("need 0 <= warm_after_days <= cold_after_days")
        if self.delete_after_days is not None and self.delete_after_days < self.cold_after_days:
            raise ValueError("delete_after_days must be at least cold_after_days")


@dataclass
class TieringReport:
    run_id: str
    now: str
    rows_to_warm: int = 0
    warm_objects_written: int = 0
    warm_objects_replaced: int = 0
    rows_to_cold: int = 0
    cold_objects_written: int = 0
    hot_rows_deleted: int = 0
    tier_rows_deleted: int = 0
    tier_objects_deleted: int = 0
    restored_expired: int = 0
    garbage_deleted: int = 0
    tiers: dict = field(default_factory=dict)  # after the run: tier -> {"objects", "rows"}, plus "hot"
    seconds: dict = field(default_factory=dict)  # wall time per step


def _month_bounds(month: str) -> tuple[datetime, datetime]:
    start = datetime.strptime(month, "%Y-%m")
    return start, (start + timedelta(days=32)).replace(day=1)


def _register(con: duckdb.DuckDBPyConnection, name: str, **columns: pa.Array) -> None:
    """Hand lists to DuckDB as an Arrow table (list parameters are converted value by value)."""
    con.register(name, pa.table(columns))


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


@dataclass(frozen=True)
class PendingObject:
    """A warm object written and verified, waiting for the transaction that catalogs it."""

    key: str
    service: str
    month: str
    written: WrittenObject
    hot_rows: int
    old_keys: list[str]


#: The hot rows a hot → warm move writes to objects: every (service, month) group older than the cutoff.
MOVED_ROWS = "l.ts < $cutoff AND l.service IS NOT NULL"


def remove_logs_rows(con: duckdb.DuckDBPyConnection, condition: str, params: dict) -> int:
    """``DELETE`` the rows of ``logs`` (alias ``l``) matching ``condition`` inside the caller's transaction;
    returns how many went (``logs`` has no index to maintain, so a delete costs what the scan costs)."""
    return con.execute(f"DELETE FROM logs AS l WHERE {condition}", params).fetchone()[0]


class Tiering:
    """One run over one home and tier store; ``now`` is the run's clock (``logpilot tier --now``)."""

    def __init__(self, paths: LogPilotPaths, store: ObjectStore, settings: TierStoreSettings,
                 policy: TieringPolicy, now: datetime, threads: int | None = None) -> None:
        self.paths, self.store, self.settings, self.policy, self.now = paths, store, settings, policy, now
        self.report = TieringReport(run_id=uuid.uuid4().hex, now=now.isoformat())
        self.db = HeldConnection(paths.db_path, linger_s=30.0, threads=threads or os.cpu_count() or 1)
        self.scratch = paths.state_dir / "tiering"

    def run(self) -> TieringReport:
        try:
            with self.db.use() as con:
                ensure_lifecycle_schema(con)
                refresh_logs_all(con, self.paths, self.settings)
            self._timed("garbage", self.collect_garbage)
            self._timed("restored_expiry", self.expire_restored)
            if self.policy.delete_after_days is not None:
                self._timed("retention", self.apply_retention,
                            self.now - timedelta(days=self.policy.delete_after_days))
            self._timed("hot_to_warm", self.move_hot_to_warm, self.now - timedelta(days=self.policy.warm_after_days))
            self._timed("warm_to_cold", self.move_warm_to_cold,
                        self.now - timedelta(days=self.policy.cold_after_days))
            with self.db.use() as con:
                self.report.tiers = tier_summary(con)
                con.execute("INSERT INTO lifecycle_runs VALUES (?, 'tiering', ?, ?)",
                            [self.report.run_id, self.now, json.dumps(asdict(self.report), default=str)])
        finally:
            self.db.close()
        return self.report

    def _timed(self, step: str, func, *args) -> None:
        start = time.perf_counter()
        func(*args)
        self.report.seconds[step] = round(time.perf_counter() - start, 3)

    # -- garbage and expiry --------------------------------------------------------------------------------
    def collect_garbage(self) -> None:
        """Delete store objects under the tier prefixes that the catalog does not know (left by a crash, or
        superseded). Tiering and purge must not run at the same time (Dagster: both in pool ``duckdb_writer``)."""
        with self.db.use() as con:
            known = {key for (key,) in con.execute("SELECT object_key FROM tier_objects").fetchall()}
        for tier in (WARM, COLD, RESTORED):
            for info in list(self.store.list(tier + "/")):
                if info.key not in known:
                    self.store.delete(info.key)
                    self.report.garbage_deleted += 1

    def expire_restored(self) -> None:
        """A local restored copy older than ``restore_days`` is dropped; an S3 object restored in place whose
        restore has lapsed is cold again."""
        lapse = self.now - timedelta(days=self.policy.restore_days)
        with self.db.use() as con:
            restored = con.execute("SELECT object_key, updated_at FROM tier_objects WHERE tier = 'restored'"
                                   ).fetchall()
        drop, refreeze = [], []
        for key, updated_at in restored:
            if key.startswith(RESTORED + "/"):
                if updated_at < lapse:
                    drop.append(key)
            elif not (info := self.store.head(key)) or not info.readable:
                refreeze.append(key)
        if not drop and not refreeze:
            return
        with self.db.use() as con:
            con.execute("BEGIN")
            self._forget(con, drop)
            con.execute("UPDATE tier_objects SET tier = 'cold', updated_at = ? WHERE list_contains(?, object_key)",
                        [self.now, refreeze])
            refresh_logs_all(con, self.paths, self.settings)
            con.execute("COMMIT")
        for key in drop:
            self.store.delete(key)
        self.report.restored_expired += len(drop) + len(refreeze)

    # -- retention -----------------------------------------------------------------------------------------
    def apply_retention(self, cutoff: datetime) -> None:
        """Delete hot rows older than ``cutoff`` and every object whose newest row is, in one transaction."""
        with self.db.use() as con:
            expired = con.execute("SELECT object_key, rows, tier FROM tier_objects WHERE max_ts < ?",
                                  [cutoff]).fetchall()
            con.execute("BEGIN")
            self.report.hot_rows_deleted += remove_logs_rows(con, "l.ts < $cutoff", {"cutoff": cutoff})
            self._forget(con, [key for key, _, _ in expired])
            refresh_logs_all(con, self.paths, self.settings)
            con.execute("COMMIT")
        crash_point("retention_after_commit")
        for key, _, _ in expired:
            self.store.delete(key)
        self.report.tier_objects_deleted += len(expired)
        self.report.tier_rows_deleted += sum(rows for _, rows, tier in expired if tier != RESTORED)

    @staticmethod
    def _forget(con: duckdb.DuckDBPyConnection, keys: list[str]) -> None:
        _register(con, "forget_keys", key=pa.array(keys, pa.string()))
        con.execute("DELETE FROM tier_object_tokens WHERE object_key IN (SELECT key FROM forget_keys)")
        con.execute("DELETE FROM tier_objects WHERE object_key IN (SELECT key FROM forget_keys)")

    # -- hot -> warm ---------------------------------------------------------------------------------------
    def move_hot_to_warm(self, cutoff: datetime) -> None:
        """One warm object per (service, month): rows of a month already warm are merged into a new object
        that replaces the old one(s). Every object is written and verified first; then one transaction
        catalogs them all and removes the moved rows from ``logs``. The warehouse is held throughout, so no
        other writer changes the rows in between."""
        shutil.rmtree(self.scratch, ignore_errors=True)  # left by a killed run (one run at a time)
        self.scratch.mkdir(parents=True, exist_ok=True)
        with self.db.use() as con, tempfile.TemporaryDirectory(dir=self.scratch) as tmp:
            groups = {(service, month): n for service, month, n in con.execute(
                f"SELECT service, strftime(ts, '%Y-%m') AS month, count(*) FROM logs l WHERE {MOVED_ROWS} "
                "GROUP BY ALL ORDER BY ALL", {"cutoff": cutoff}).fetchall()}
            if not groups:
                return
            old = {(service, month): keys for service, month, keys in con.execute(
                "SELECT service, month, list(object_key ORDER BY object_key) FROM tier_objects "
                "WHERE tier = 'warm' GROUP BY ALL").fetchall() if (service, month) in groups}
            # one file name per object: DuckDB caches file contents by path (and mtime, to the second)
            files = (Path(tmp) / f"{i}.parquet" for i in itertools.count())
            columns = ", ".join(f'"{c}"' for c in logs_columns(con))
            pending = [self._merge_month(con, columns, service, month, groups[service, month], keys, cutoff,
                                         next(files)) for (service, month), keys in old.items()]
            pending += self._write_new_months(con, columns, groups, list(old), cutoff, files)
            crash_point("warm_after_verify")
            con.execute("BEGIN")
            moving = sum(p.hot_rows for p in pending)
            removed = remove_logs_rows(con, MOVED_ROWS, {"cutoff": cutoff})
            if removed != moving:
                con.execute("ROLLBACK")
                raise RuntimeError(f"{removed} hot rows to remove, {moving} written to warm objects")
            retired = [k for p in pending for k in p.old_keys if k != p.key]
            self._forget(con, retired + [p.key for p in pending])
            self._catalog(con, pending)
            refresh_logs_all(con, self.paths, self.settings)
            crash_point("warm_in_transaction")
            con.execute("COMMIT")
        crash_point("warm_after_commit")
        for key in retired:
            self.store.delete(key)
        self.report.rows_to_warm += moving
        self.report.warm_objects_written += len(pending)
        self.report.warm_objects_replaced += len(retired)

    @staticmethod
    def _months_table(con: duckdb.DuckDBPyConnection, name: str, months: list[tuple[str, str]]) -> None:
        _register(con, f"{name}_in", service=pa.array([s for s, _ in months], pa.string()),
                  month=pa.array([_month_bounds(m)[0] for _, m in months], pa.timestamp("us")))
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT service, month FROM {name}_in")

    def _catalog(self, con: duckdb.DuckDBPyConnection, pending: list["PendingObject"]) -> None:
        _register(con, "pending_objects", key=pa.array([p.key for p in pending], pa.string()),
                  service=pa.array([p.service for p in pending], pa.string()),
                  month=pa.array([p.month for p in pending], pa.string()),
                  min_ts=pa.array([p.written.min_ts for p in pending], pa.timestamp("us")),
                  max_ts=pa.array([p.written.max_ts for p in pending], pa.timestamp("us")),
                  rows=pa.array([p.written.rows for p in pending], pa.int64()),
                  bytes=pa.array([p.written.bytes for p in pending], pa.int64()),
                  sha256=pa.array([p.written.sha256 for p in pending], pa.string()))
        _register(con, "pending_tokens", key=pa.array([p.key for p in pending for _ in p.written.tokens], pa.string()),
                  token=pa.array([t for p in pending for t in p.written.tokens], pa.string()))
        con.execute("INSERT INTO tier_objects SELECT key, 'warm', service, month, min_ts, max_ts, rows, bytes, sha256, "
                    "$now, $now FROM pending_objects", {"now": self.now})
        con.execute("INSERT INTO tier_object_tokens SELECT key, token FROM pending_tokens")

    def _write_new_months(self, con: duckdb.DuckDBPyConnection, columns: str, groups: dict, merged: list,
                          cutoff: datetime, files) -> list["PendingObject"]:
        """Every month not yet warm in ONE sorted pass over ``logs``, cut into one object per (service, month)."""
        where = MOVED_ROWS
        if merged:
            self._months_table(con, "merged_months", merged)
            where += (" AND NOT EXISTS (SELECT 1 FROM merged_months m WHERE l.service = m.service "
                      "AND date_trunc('month', l.ts) = m.month)")
        if len(merged) == len(groups):
            return []
        reader = con.execute(f"SELECT {columns}, strftime(l.ts, '%Y-%m') AS _month FROM logs l WHERE {where} "
                             "ORDER BY l.service, l.ts, l.event_id", {"cutoff": cutoff}
                             ).fetch_record_batch(ROW_GROUP_ROWS)
        pending, writer, current = [], None, None
        for batch in reader:
            if not batch.num_rows:
                continue
            services, months = batch.column("service"), batch.column("_month")
            data = batch.drop_columns(["_month"])
            change = pc.or_(pc.not_equal(services[1:], services[:-1]), pc.not_equal(months[1:], months[:-1]))
            cuts = [0, *(i + 1 for i in pc.indices_nonzero(change).to_pylist()), batch.num_rows]
            for start, end in zip(cuts, cuts[1:]):
                month = (services[start].as_py(), months[start].as_py())
                if month != current:
                    if writer is not None:
                        pending.append(self._store_object(writer, *current, groups[current], []))
                    writer, current = ObjectWriter(next(files), data.schema), month
                writer.write(data.slice(start, end - start))
        if writer is not None:
            pending.append(self._store_object(writer, *current, groups[current], []))
        return pending

    def _merge_month(self, con: duckdb.DuckDBPyConnection, columns: str, service: str, month: str, moving: int,
                     old: list[str], cutoff: datetime, path: Path) -> "PendingObject":
        """The month's new object: its ``moving`` hot rows plus the rows of its warm object(s) ``old``, unless
        the same event came back into hot (a re-run backfill): hot wins."""
        start, end = _month_bounds(month)
        hot, hot_where = [service, start, min(end, cutoff)], "service = ? AND ts >= ? AND ts < ?"
        kept = (f"SELECT {columns} FROM read_parquet({_sql_list([self.settings.uri(k) for k in old])}) "
                f"WHERE event_id NOT IN (SELECT event_id FROM logs WHERE {hot_where})")
        expected = moving + con.execute(f"SELECT count(*) FROM ({kept})", hot).fetchone()[0]
        reader = con.execute(f"SELECT {columns} FROM logs WHERE {hot_where} UNION ALL {kept} ORDER BY ts, event_id",
                             hot + hot).fetch_record_batch(ROW_GROUP_ROWS)
        writer = ObjectWriter(path, reader.schema)
        for batch in reader:
            writer.write(batch)
        return self._store_object(writer, service, month, expected, old, hot_rows=moving)

    def _store_object(self, writer: ObjectWriter, service: str, month: str, expected: int, old: list[str],
                      hot_rows: int | None = None) -> "PendingObject":
        """Close the object, upload it to its content-addressed key and verify it there (rows, sha256)."""
        written = writer.close()
        if written.rows != expected:
            raise RuntimeError(f"{service} {month}: object holds {written.rows} rows, expected {expected}")
        key = object_key(WARM, service, month, written.sha256)
        self.store.put_file(key, written.path, sha256=written.sha256)
        crash_point("warm_after_put")
        stored = self.store.checksum(key)
        if stored != written.sha256:
            raise RuntimeError(f"{key}: stored sha256 {stored} != written {written.sha256}")
        written.path.unlink()
        return PendingObject(key, service, month, written, expected if hot_rows is None else hot_rows, old)

    # -- warm -> cold --------------------------------------------------------------------------------------
    def move_warm_to_cold(self, cutoff: datetime) -> None:
        """Copy every warm object whose newest row is older than ``cutoff`` to ``cold/`` (archive storage
        class), verify the copies, swap the catalog in one transaction, then delete the warm copies."""
        with self.db.use() as con:
            movable = con.execute("SELECT object_key, rows, bytes, sha256 FROM tier_objects WHERE tier = 'warm' "
                                  "AND max_ts < ? ORDER BY object_key", [cutoff]).fetchall()
        if not movable:
            return
        moves = []
        for key, rows, size, sha256 in movable:
            cold = f"{COLD}/{key.removeprefix(WARM + '/')}"
            self.store.copy(key, cold, self.settings.cold_storage_class)
            crash_point("cold_after_copy")
            self._verify_copy(cold, size, sha256)
            moves.append((key, cold, rows))
        with self.db.use() as con:
            to_cold = "regexp_replace(object_key, '^warm/', 'cold/')"
            _register(con, "cold_moves", key=pa.array([m[0] for m in moves], pa.string()))
            moving = "object_key IN (SELECT key FROM cold_moves)"
            con.execute("BEGIN")
            con.execute(f"UPDATE tier_object_tokens SET object_key = {to_cold} WHERE {moving}")
            con.execute(f"INSERT INTO tier_objects SELECT {to_cold}, 'cold', service, month, min_ts, max_ts, rows, "
                        f"bytes, sha256, created_at, ? FROM tier_objects WHERE {moving}", [self.now])
            con.execute(f"DELETE FROM tier_objects WHERE {moving}")
            refresh_logs_all(con, self.paths, self.settings)
            crash_point("cold_in_transaction")
            con.execute("COMMIT")
        crash_point("cold_after_commit")
        for key, _, _ in moves:
            self.store.delete(key)
        self.report.rows_to_cold += sum(rows for _, _, rows in moves)
        self.report.cold_objects_written += len(moves)

    def _verify_copy(self, key: str, size: int, sha256: str) -> None:
        """An archived copy cannot be read back: check its size and the checksum the store recorded."""
        info = self.store.head(key)
        stored = None if info is None else (self.store.checksum(key) if info.readable else info.sha256)
        if info is None or info.size != size or stored != sha256:
            raise RuntimeError(f"{key}: copy does not match (size {info and info.size} vs {size}, "
                               f"sha256 {stored} vs {sha256})")


def tier_summary(con: duckdb.DuckDBPyConnection) -> dict:
    """Objects and rows per tier, and the hot row count."""
    summary = {tier: {"objects": n, "rows": int(rows or 0)} for tier, n, rows in con.execute(
        "SELECT tier, count(*), sum(rows) FROM tier_objects GROUP BY tier ORDER BY tier").fetchall()}
    summary["hot"] = {"rows": con.execute("SELECT count(*) FROM logs").fetchone()[0]}
    return summary
