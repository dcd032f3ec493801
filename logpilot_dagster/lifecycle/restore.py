"""Restore cold objects for a time range so ``logs_all`` reads them again.

S3: ``restore_object`` on the cold key; the object is read in place once the restore completed (minutes to
hours on AWS, at once on moto): objects still in progress are reported as pending, and running the restore
again catalogs them once they are done. Local: the object is copied to ``restored/`` and verified. Restored
data stays readable for ``days`` (S3 expires it; a tiering run drops local copies older than that).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from logpilot_dagster.lifecycle.catalog import cold_ranges, ensure_lifecycle_schema
from logpilot_dagster.lifecycle.crash import crash_point
from logpilot_dagster.lifecycle.settings import TierStoreSettings
from logpilot_dagster.lifecycle.views import refresh_logs_all
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.object_store import ObjectStore
from logpilot_dagster.storage.warehouse import connect, upsert


@dataclass
class RestoreReport:
    objects_restored: int = 0
    rows_restored: int = 0
    pending: list[str] = field(default_factory=list)
    months: list[str] = field(default_factory=list)  # "<service> <YYYY-MM>" now readable


def restore_range(paths: LogPilotPaths, store: ObjectStore, settings: TierStoreSettings, start: datetime | None,
                  end: datetime | None, service: str | None = None, days: int = 7,
                  now: datetime | None = None) -> RestoreReport:
    """Restore every cold object of ``service`` (None: all) overlapping ``start <= ts < end``."""
    now = now or datetime.now(timezone.utc).replace(tzinfo=None)
    with connect(paths.db_path) as con:
        ensure_lifecycle_schema(con)
        targets = cold_ranges(con, service, start, end)
    report, done = RestoreReport(), []
    for row in targets:
        key = row["object_key"]
        readable = store.restore(key, days)
        if readable is None:
            report.pending.append(key)
            continue
        if readable != key and store.checksum(readable) != row["sha256"]:
            raise RuntimeError(f"restored copy {readable} does not match {key}")
        done.append((row, readable))
    crash_point("restore_before_commit")
    if done:
        with connect(paths.db_path) as con:
            con.execute("BEGIN")
            for row, readable in done:
                key = row["object_key"]
                if readable == key:
                    con.execute("UPDATE tier_objects SET tier = 'restored', updated_at = ? WHERE object_key = ?",
                                [now, key])
                else:
                    con.execute("DELETE FROM tier_object_tokens WHERE object_key = ?", [readable])
                    upsert(con, "tier_objects", "object_key",
                           "SELECT ?::VARCHAR AS object_key, 'restored' AS tier, service, month, min_ts, max_ts, rows, "
                           "bytes, sha256, ?::TIMESTAMP AS created_at, ?::TIMESTAMP AS updated_at FROM tier_objects "
                           "WHERE object_key = ?", [readable, now, now, key])
                    con.execute("INSERT INTO tier_object_tokens SELECT ?, token FROM tier_object_tokens "
                                "WHERE object_key = ?", [readable, key])
            refresh_logs_all(con, paths, settings)
            con.execute("COMMIT")
    report.objects_restored = len(done)
    report.rows_restored = sum(row["rows"] for row, _ in done)
    report.months = [f"{row['service']} {row['month']}" for row, _ in done]
    return report
