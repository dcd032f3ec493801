"""The warm and cold tiers of a purge: find the objects that hold a match and rewrite only those.

Objects are found through the catalog: pseudonym tokens through ``tier_object_tokens``, a service's range
through each object's service and time range. A literal value has no index, so every readable object is read
(text columns only, RE2 filter in DuckDB); an archived S3 object cannot be read without a restore, so it is
scanned for literals only when the catalog points at it and is otherwise counted as not scanned.

A rewrite writes the new object to its content-addressed key (same tier, same storage class), checks it, and
hands the catalog change to the caller's transaction; the superseded keys are journalled in ``lifecycle_runs``
in that same transaction and deleted after commit (:func:`delete_superseded`, which also finishes the deletions
of a purge that crashed after its commit).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from logpilot_dagster.lifecycle.catalog import objects_overlapping, objects_with_token
from logpilot_dagster.lifecycle.matching import Matcher, PurgeRequest
from logpilot_dagster.lifecycle.objects import ObjectWriter, object_key
from logpilot_dagster.lifecycle.settings import COLD, RESTORED, WARM, TierStoreSettings
from logpilot_dagster.storage.object_store import ObjectStore

JOURNAL_STEP = "purge_delete"
RESTORE_DAYS = 1


@dataclass
class RewrittenObject:
    old: dict  # the catalog row
    new_key: str | None  # None: every row went, the object is dropped
    rows: int = 0
    bytes: int = 0
    sha256: str = ""
    min_ts: object = None
    max_ts: object = None
    tokens: list[str] = field(default_factory=list)
    rows_touched: int = 0


@dataclass
class ObjectPurge:
    rewritten: list[RewrittenObject] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # indexed for a token they no longer hold
    pending_restore: list[str] = field(default_factory=list)
    not_scanned: int = 0
    scanned: int = 0
    candidates: int = 0  # objects the request may touch (what a dry run would rewrite)

    def by_tier(self) -> dict[str, dict]:
        tiers: dict[str, dict] = {}
        for item in self.rewritten:
            entry = tiers.setdefault(item.old["tier"], {"objects": 0, "rows": 0})
            entry["objects"] += 1
            entry["rows"] += item.rows_touched
        return tiers


def _uri(settings: TierStoreSettings, key: str) -> str:
    return settings.uri(key).replace("'", "''")


def _archived(settings: TierStoreSettings, row: dict) -> bool:
    """Unreadable without a restore: an S3 object in the cold tier (a local cold directory is plain files; an
    S3 object in the ``restored`` tier is readable in place)."""
    return settings.is_s3 and row["tier"] == COLD


def _twins(con: duckdb.DuckDBPyConnection, keys: set[str]) -> set[str]:
    """A local cold object and its restored copy hold the same rows: purge both or neither."""
    swapped = {f"{RESTORED if k.startswith(COLD + '/') else COLD}/{k.split('/', 1)[1]}"
               for k in keys if k.split("/", 1)[0] in (COLD, RESTORED)}
    if not swapped - keys:
        return keys
    found = con.execute("SELECT object_key FROM tier_objects WHERE list_contains(?, object_key)",
                        [sorted(swapped - keys)]).fetchall()
    return keys | {k for (k,) in found}


def _literal_hits(con: duckdb.DuckDBPyConnection, rows: list[dict], matcher: Matcher,
                  settings: TierStoreSettings) -> set[str]:
    """Keys of the objects among ``rows`` with a text value that may hold a match (the SQL prefilter)."""
    if not rows:
        return set()
    files = ", ".join(f"'{_uri(settings, r['object_key'])}'" for r in rows)
    described = con.execute(f"DESCRIBE SELECT * FROM read_parquet([{files}], union_by_name = true)").fetchall()
    where = matcher.sql_where([(name, kind) for name, kind, *_ in described])
    by_uri = {settings.uri(r["object_key"]): r["object_key"] for r in rows}
    found = con.execute(f"SELECT DISTINCT filename FROM read_parquet([{files}], filename = true, "
                        f"union_by_name = true) WHERE {where}", {"pattern": matcher.re2}).fetchall()
    return {by_uri[uri] for (uri,) in found if uri in by_uri}


def find_objects(con: duckdb.DuckDBPyConnection, request: PurgeRequest, matcher: Matcher,
                 settings: TierStoreSettings, plan: ObjectPurge) -> list[dict]:
    """Catalog rows of the objects the request may touch (tokens: index; range: catalog; literals: a scan)."""
    if request.service:
        return objects_overlapping(con, request.service, request.start, request.end)
    keys = {key for token in matcher.tokens for key in objects_with_token(con, token)}
    literals = Matcher([n for n in matcher.needles if n.label != "token"])
    if not literals.empty:
        every = objects_overlapping(con, None, None, None)
        readable = [r for r in every if not _archived(settings, r)]
        plan.not_scanned = len(every) - len(readable)
        plan.scanned = len(readable)
        keys |= _literal_hits(con, readable, literals, settings)
    keys = _twins(con, keys)
    if not keys:
        return []
    return [r for r in objects_overlapping(con, None, None, None) if r["object_key"] in keys]


def apply_request(table: pa.Table, request: PurgeRequest, matcher: Matcher) -> tuple[pa.Table, int]:
    """The object's rows with the request applied, and how many rows it changed or removed."""
    if request.service:
        ts = table.column("ts")
        inside = pc.and_(pc.equal(table.column("service"), request.service),
                         pc.and_(pc.greater_equal(ts, pa.scalar(request.start, ts.type)),
                                 pc.less(ts, pa.scalar(request.end, ts.type))))
        inside = pc.fill_null(inside, False)
        removed = int(pc.sum(inside).as_py() or 0)
        return (table.filter(pc.invert(inside)), removed) if removed else (table, 0)
    return matcher.mask_table(table)


def rewrite_object(store: ObjectStore, settings: TierStoreSettings, row: dict, request: PurgeRequest,
                   matcher: Matcher, plan: ObjectPurge) -> None:
    """Rewrite one object into a new content-addressed key (or note it unchanged / awaiting a restore)."""
    key = row["object_key"]
    if _archived(settings, row) and store.restore(key, RESTORE_DAYS) is None:
        plan.pending_restore.append(key)
        return
    with tempfile.TemporaryDirectory(prefix="logpilot-purge-") as tmp:
        src = Path(tmp) / "old.parquet"
        with store.open(key) as stream, open(src, "wb") as out:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                out.write(chunk)
        table, touched = apply_request(pq.read_table(src), request, matcher)
        if not touched:
            plan.stale.append(key)
            return
        if not table.num_rows:
            plan.rewritten.append(RewrittenObject(row, None, rows_touched=touched))
            return
        writer = ObjectWriter(Path(tmp) / "new.parquet", table.schema)
        for batch in table.sort_by([("ts", "ascending"), ("event_id", "ascending")]).to_batches():
            writer.write(batch)
        written = writer.close()
        new_key = object_key(key.split("/", 1)[0], row["service"], row["month"], written.sha256)
        archive = settings.cold_storage_class if settings.is_s3 and row["tier"] != WARM else None
        store.put_file(new_key, written.path, storage_class=archive, sha256=written.sha256)
        stored = store.head(new_key)
        if stored is None or stored.size != written.bytes:
            raise RuntimeError(f"purge: {new_key} was not stored whole")
        if stored.readable and store.checksum(new_key) != written.sha256:
            raise RuntimeError(f"purge: {new_key} reads back with another checksum")
        plan.rewritten.append(RewrittenObject(row, new_key, written.rows, written.bytes, written.sha256,
                                              written.min_ts, written.max_ts, written.tokens, touched))


def commit_catalog(con: duckdb.DuckDBPyConnection, plan: ObjectPurge, purged_tokens: list[str],
                   request_id: str) -> None:
    """Inside the caller's transaction: swap catalog rows and tokens, journal the superseded keys."""
    for item in plan.rewritten:
        old = item.old
        if item.new_key is not None:  # an S3 object restored in place is archived again once rewritten
            tier = COLD if old["tier"] == RESTORED and item.new_key.startswith(COLD + "/") else old["tier"]
            con.execute("INSERT INTO tier_objects SELECT ?, ?, service, month, ?, ?, ?, ?, ?, created_at, now() "
                        "FROM tier_objects WHERE object_key = ?",
                        [item.new_key, tier, item.min_ts, item.max_ts, item.rows, item.bytes, item.sha256,
                         old["object_key"]])
            con.execute("INSERT INTO tier_object_tokens SELECT ?, unnest(?::VARCHAR[])", [item.new_key, item.tokens])
        con.execute("DELETE FROM tier_objects WHERE object_key = ?", [old["object_key"]])
        con.execute("DELETE FROM tier_object_tokens WHERE object_key = ?", [old["object_key"]])
        if item.new_key != old["object_key"]:
            con.execute("INSERT INTO lifecycle_runs VALUES (?, ?, now(), ?)",
                        [request_id, JOURNAL_STEP, old["object_key"]])
    if plan.stale and purged_tokens:
        con.execute("DELETE FROM tier_object_tokens WHERE list_contains(?, object_key) AND list_contains(?, token)",
                    [plan.stale, purged_tokens])


def delete_superseded(store: ObjectStore, db_con: duckdb.DuckDBPyConnection) -> list[str]:
    """Delete every journalled superseded object (this purge's and any a crash left) and clear the journal."""
    keys = [k for (k,) in db_con.execute("SELECT DISTINCT detail FROM lifecycle_runs WHERE step = ?",
                                         [JOURNAL_STEP]).fetchall()]
    live = {k for (k,) in db_con.execute("SELECT object_key FROM tier_objects").fetchall()}
    for key in keys:
        if key not in live:
            store.delete(key)
    if keys:
        db_con.execute("DELETE FROM lifecycle_runs WHERE step = ?", [JOURNAL_STEP])
    return keys
