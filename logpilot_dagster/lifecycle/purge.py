"""Right to be forgotten: remove one subject from every tier and store, physically, and hand back a receipt.

Order (crash-safe; a re-run finds whatever a stopped run left and finishes it, and is a no-op once done):

1. Tier objects that hold a match are rewritten to new content-addressed keys (``object_purge``).
2. ONE warehouse transaction: hot tables re-masked (or the service's range deleted), catalog rows and tokens
   swapped, ``logs_all`` refreshed, superseded keys journalled, and a marker that the file must be rewritten.
3. Superseded objects deleted; the DuckDB file rewritten into a fresh file and swapped in under the lock
   (``warehouse_purge.rewrite_database``), which drops the marker. On the lake profile (step 2 retried on commit
   conflicts): data files rewritten, older snapshots expired, replaced files deleted and the Postgres catalog's
   text statistics recomputed and vacuumed (``lake_purge.forget_history``), then the marker dropped.
4. Staged Parquet, JSON state and other files, Chroma (rebuilt), and the landing zone (only with
   ``include_landing``; otherwise the receipt lists the files that still hold the value).
5. The receipt (no value, a keyed fingerprint) into ``purge_receipts`` and ``state/receipts/<id>.json``.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

from logpilot_dagster.knowledge.location import server_url
from logpilot_dagster.lifecycle.catalog import ensure_lifecycle_schema
from logpilot_dagster.lifecycle.crash import crash_point
from logpilot_dagster.lifecycle.file_purge import purge_landing, purge_other_files, purge_staged_parquet
from logpilot_dagster.lifecycle.lake_purge import WAL_NOTE, forget_history, postgres_dsn
from logpilot_dagster.lifecycle.matching import Matcher, PurgeRequest
from logpilot_dagster.lifecycle.object_purge import (ObjectPurge, commit_catalog, delete_superseded,
                                                     find_objects, rewrite_object)
from logpilot_dagster.lifecycle.receipts import earlier_requests, ensure_receipts_table, store_receipt
from logpilot_dagster.lifecycle.s3_access import create_s3_secret
from logpilot_dagster.lifecycle.settings import TierStoreSettings
from logpilot_dagster.lifecycle.store import tier_store
from logpilot_dagster.lifecycle.views import refresh_logs_all
from logpilot_dagster.lifecycle.warehouse_purge import delete_service_range, remask_tables, rewrite_database
from logpilot_dagster.privacy.pseudonym import PseudonymKeys, pii_mode
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage import profile
from logpilot_dagster.storage.lake import LakeSettings
from logpilot_dagster.storage.object_store import ObjectStore
from logpilot_dagster.storage.warehouse import connect

REWRITE_STEP = "purge_rewrite_pending"


def _now() -> str:
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")


def _purge_warehouse(paths: LogPilotPaths, request: PurgeRequest, matcher: Matcher, settings: TierStoreSettings,
                     store: ObjectStore, request_id: str, fingerprint: str,
                     apply: bool) -> tuple[dict, ObjectPurge, list, bool]:
    """Steps 1-3; returns (hot rows per table, the object plan, earlier request ids, file rewritten)."""
    plan = ObjectPurge()
    with connect(paths.db_path) as con:
        ensure_lifecycle_schema(con)
        ensure_receipts_table(con)
        if settings.is_s3:  # the scan reads objects, and logs_all (refreshed, copied) names them
            create_s3_secret(con, settings)
        if apply:
            delete_superseded(store, con)  # what a purge stopped after its commit left behind
        earlier = earlier_requests(con, fingerprint)
        candidates = find_objects(con, request, matcher, settings, plan)
        plan.candidates = len(candidates)
        if apply:
            for row in candidates:
                rewrite_object(store, settings, row, request, matcher, plan)
            crash_point("purge_objects_written")

        def transaction() -> dict:
            con.execute("BEGIN")
            try:
                hot = remask_tables(con, matcher, apply)
                if request.service:
                    rows = delete_service_range(con, request.service, request.start, request.end, apply)
                    if rows:
                        hot["logs"] = rows
                if apply and (plan.rewritten or plan.stale):
                    commit_catalog(con, plan, matcher.tokens, request_id)
                if apply and plan.rewritten:
                    refresh_logs_all(con, paths, settings)
                if apply and (hot or plan.rewritten):
                    con.execute("INSERT INTO lifecycle_runs VALUES (?, ?, now(), '')", [request_id, REWRITE_STEP])
                con.execute("COMMIT")
                return hot
            except BaseException:
                profile.rollback(con)
                raise

        hot = profile.retry_conflicts(transaction, "purge")
        if not apply:
            return hot, plan, earlier, False
        crash_point("purge_after_commit")
        delete_superseded(store, con)
        pending = con.execute("SELECT count(*) FROM lifecycle_runs WHERE step = ?", [REWRITE_STEP]).fetchone()[0]
        if pending and profile.is_lake():  # the marker goes once the history is gone: a crash before re-runs it
            forget_history(con, LakeSettings.from_env(paths.home))
            con.execute("DELETE FROM lifecycle_runs WHERE step = ?", [REWRITE_STEP])
        elif pending:  # the marker goes in the fresh copy only: a crash before the swap leaves it in place
            rewrite_database(con, paths.db_path, lambda copy: con.execute(
                f"DELETE FROM {copy}.main.lifecycle_runs WHERE step = ?", [REWRITE_STEP]))
        return hot, plan, earlier, bool(pending)


def purge(paths: LogPilotPaths, request: PurgeRequest, landing: ObjectStore, include_landing: bool = False,
          dry_run: bool = False, settings: TierStoreSettings | None = None,
          store: ObjectStore | None = None) -> dict:
    """Run one purge request; returns the receipt (stored unless ``dry_run``)."""
    if profile.is_lake():
        postgres_dsn(LakeSettings.from_env(paths.home))  # refuses a catalog it could not scrub, before any change
    started = _now()
    apply = not dry_run
    keys = PseudonymKeys.load()
    matcher = Matcher.for_request(request, keys)
    settings = settings or TierStoreSettings.from_env(paths)
    store = store or tier_store(settings)
    request_id = f"purge-{started[:10]}-{uuid.uuid4().hex[:8]}"
    seconds, clock = {}, time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        seconds[step] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()

    fingerprint = request.fingerprint(keys)
    hot, plan, earlier, rewritten_db = _purge_warehouse(paths, request, matcher, settings, store, request_id,
                                                        fingerprint, apply)
    lap("warehouse_and_tiers")
    staged = purge_staged_parquet(paths, request, matcher, apply)
    skip = [paths.db_path, paths.db_path.with_name(paths.db_path.name + ".wal"), paths.landing_zone,
            paths.parquet_dir, paths.chroma_dir, paths.state_dir / "receipts", paths.home / "tiers",
            paths.home / "lake"]  # the lake's local catalog and data: forget_history
    files = purge_other_files(paths, matcher, skip, apply)
    lap("files")
    chroma = {}
    if server_url():
        from logpilot_dagster.knowledge.vectors import client
        from logpilot_dagster.lifecycle.chroma_purge import purge_chroma_server

        chroma = purge_chroma_server(client(paths.chroma_dir), matcher, apply)
    elif paths.chroma_dir.exists() or paths.chroma_dir.with_name("chroma.purged").exists():
        from logpilot_dagster.lifecycle.chroma_purge import purge_chroma  # chromadb: only when there is a store

        chroma = purge_chroma(paths.chroma_dir, matcher, apply)
    lap("chroma")
    landing_files = purge_landing(landing, matcher, apply and include_landing) if not request.service else []
    lap("landing")
    touched = {
        "hot": hot,
        **{tier: counts for tier, counts in plan.by_tier().items()},
        "staged_parquet": {k: v for k, v in staged.items() if staged["files"]},
        "state_files": {"files": len(files["rewritten"])} if files["rewritten"] else {},
        "chroma": chroma,
    }
    total = (sum(hot.values()) + sum(i.rows_touched for i in plan.rewritten) + staged["rows"]
             + len(files["rewritten"]) + sum(chroma.values()) + (len(landing_files) if include_landing else 0))
    receipt = {
        "request_id": request_id, "kind": request.kind, "fingerprint": fingerprint,
        "mode": pii_mode(), "dry_run": dry_run, "started_at": started, "finished_at": _now(),
        "tokens_searched": len(matcher.tokens), "touched": touched, "total_touched": total,
        "objects": {"rewritten": sum(1 for i in plan.rewritten if i.new_key), "dropped":
                    sum(1 for i in plan.rewritten if not i.new_key), "stale_index_entries": len(plan.stale),
                    "candidates": plan.candidates, "scanned": plan.scanned, "not_scanned": plan.not_scanned,
                    "pending_restore": plan.pending_restore, "catalogued": _catalogued(paths)},
        "warehouse_rewritten": rewritten_db, "state_files": files["rewritten"], "residual": files["residual"],
        "landing": {"files": landing_files, "rewritten": bool(landing_files) and include_landing and apply},
        "earlier_requests": earlier, "notes": list(matcher.notes), "seconds": seconds,
    }
    if profile.is_lake() and rewritten_db:
        receipt["notes"].append(WAL_NOTE)
    if plan.pending_restore:
        receipt["notes"].append("archived objects are being restored: run the same purge again once they are")
    if chroma_url := server_url():
        receipt["notes"].append(f"the vectors live on the Chroma server {chroma_url}: its affected documents were "
                                "deleted and added again re-masked through its API, so no query returns the value; "
                                "the server's own files (on its host) may keep old bytes until its store is rebuilt")
    if not dry_run:
        with connect(paths.db_path) as con:
            store_receipt(con, paths, receipt)
    return receipt


def _catalogued(paths: LogPilotPaths) -> int:
    with connect(paths.db_path, read_only=True) as con:
        return con.execute("SELECT count(*) FROM tier_objects").fetchone()[0]
