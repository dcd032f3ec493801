"""Chroma in a purge: documents and metadata that hold a match are re-masked and re-embedded.

Chroma keeps what it was given in ``chroma.sqlite3``: the write-ahead queue (``embeddings_queue``), the
full-text index and free pages all keep a deleted or updated document. So an affected store is rebuilt into a
fresh directory (every collection copied with its embeddings; only changed documents embedded again) and swapped
in; the old directory is then deleted. A Chroma server (``LOGPILOT_CHROMA_URL``) is purged through its API: the
affected documents are deleted and added again re-masked, so no query returns the value any more; the server's own
files are on its host, out of this process's reach (the receipt says so).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

import chromadb
from chromadb.api.client import SharedSystemClient

from logpilot_dagster.knowledge.embeddings import embed_texts, open_collection
from logpilot_dagster.knowledge.vectors import content_hash
from logpilot_dagster.lifecycle.matching import Matcher

PAGE = 1000


def _scrub_metadata(meta: dict | None, document: str | None, matcher: Matcher) -> dict | None:
    if meta is None:
        return None
    out = {k: matcher.replace(v) if isinstance(v, str) else v for k, v in meta.items()}
    if "content_hash" in out and document is not None:
        out["content_hash"] = content_hash(document)
    return out


def _records(col) -> list[dict]:
    records, offset = [], 0
    while True:
        page = col.get(limit=PAGE, offset=offset, include=["documents", "metadatas", "embeddings"])
        if not page["ids"]:
            return records
        for i, rid in enumerate(page["ids"]):
            records.append({"id": rid, "document": page["documents"][i], "metadata": page["metadatas"][i],
                            "embedding": page["embeddings"][i]})
        offset += len(page["ids"])


def _hit(record: dict, matcher: Matcher) -> bool:
    meta = record["metadata"] or {}
    return matcher.found_in(record["document"]) or any(
        isinstance(v, str) and matcher.found_in(v) for v in meta.values())


def _close_clients() -> None:
    """Chroma caches one system per path in this process; drop them before the directory moves."""
    SharedSystemClient.clear_system_cache()


def _write_store(path: str, collections: dict[str, list[dict]]) -> None:
    """Write the (already re-masked) records into a new store. Runs in a fresh process: the HNSW files leave
    unused neighbour slots uninitialised, so they may carry stale heap bytes, which must not come from a heap
    that held the purged values."""
    rebuilt = chromadb.PersistentClient(path=path)
    for name, records in collections.items():
        _add(open_collection(rebuilt, name), records)


def _remask(records: list[dict], matcher: Matcher) -> list[dict]:
    """The records that hold a match, re-masked and re-embedded in place."""
    changed = [r for r in records if _hit(r, matcher)]
    for r in changed:
        r["document"] = matcher.replace(r["document"])
        r["metadata"] = _scrub_metadata(r["metadata"], r["document"], matcher)
    if changed:
        for r, vector in zip(changed, embed_texts([r["document"] or "" for r in changed])):
            r["embedding"] = vector
    return changed


def _add(collection, records: list[dict]) -> None:
    for start in range(0, len(records), PAGE):
        chunk = records[start:start + PAGE]
        collection.add(ids=[r["id"] for r in chunk], documents=[r["document"] for r in chunk],
                       embeddings=[r["embedding"] for r in chunk], metadatas=[r["metadata"] or None for r in chunk])


def purge_chroma_server(client, matcher: Matcher, apply: bool) -> dict[str, int]:
    """Documents per collection of a Chroma server that hold a match; ``apply`` deletes them and adds them again
    re-masked (the ids stay)."""
    if matcher.empty:
        return {}
    touched = {}
    for listed in client.list_collections():
        col = open_collection(client, listed.name)
        records = _records(col)
        hits = [r for r in records if _hit(r, matcher)]
        if not hits:
            continue
        touched[listed.name] = len(hits)
        if apply:
            changed = _remask(hits, matcher)
            col.delete(ids=[r["id"] for r in changed])
            _add(col, changed)
    return touched


def purge_chroma(chroma_dir: Path, matcher: Matcher, apply: bool) -> dict[str, int]:
    """Documents per collection that hold a match; ``apply`` rebuilds the store without them."""
    chroma_dir = Path(chroma_dir)
    retired = chroma_dir.with_name(chroma_dir.name + ".purged")
    if retired.exists():  # a purge stopped while swapping: keep whichever copy is complete
        if chroma_dir.exists():
            shutil.rmtree(retired)
        else:
            os.replace(retired, chroma_dir)
    if matcher.empty or not (chroma_dir / "chroma.sqlite3").exists():
        return {}
    with tempfile.TemporaryDirectory(prefix="logpilot-purge-") as tmp:  # opening a store writes to it
        copy = Path(tmp) / "chroma"
        shutil.copytree(chroma_dir, copy)
        client = chromadb.PersistentClient(path=str(copy))
        collections = {c.name: _records(open_collection(client, c.name)) for c in client.list_collections()}
        _close_clients()
    touched = {name: sum(_hit(r, matcher) for r in records) for name, records in collections.items()}
    touched = {name: n for name, n in touched.items() if n}
    if not touched or not apply:
        return touched
    fresh = chroma_dir.with_name(chroma_dir.name + ".rebuild")
    shutil.rmtree(fresh, ignore_errors=True)
    for records in collections.values():
        _remask(records, matcher)
    writer = multiprocessing.get_context("spawn").Process(target=_write_store, args=(str(fresh), collections))
    writer.start()
    writer.join()
    if writer.exitcode:
        raise RuntimeError(f"rebuilding the Chroma store in {fresh} failed (exit code {writer.exitcode})")
    _close_clients()
    os.replace(chroma_dir, retired)
    os.replace(fresh, chroma_dir)
    shutil.rmtree(retired)
    return touched
