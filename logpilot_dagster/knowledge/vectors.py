"""Log-template vectors in Chroma: incremental sync, right-to-be-forgotten deletes, semantic search.

Chroma is embedded (a ``PersistentClient`` under ``LOGPILOT_HOME/chroma``) unless ``LOGPILOT_CHROMA_URL``
names a Chroma server (``chroma run``) that every machine shares. Either way the vectors are computed here, by
the local MiniLM model: the server only stores and searches them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import chromadb
from chromadb.config import Settings

from logpilot_dagster.knowledge.embeddings import embed_texts, open_collection
from logpilot_dagster.knowledge.hnsw_files import zero_unused_capacity
from logpilot_dagster.knowledge.location import SERVER_URL_ENV, server_url

TEMPLATES_COLLECTION = "log_templates"


def client(chroma_dir: Path) -> Any:
    """The Chroma server's client when ``LOGPILOT_CHROMA_URL`` is set, else one persisted under ``chroma_dir``."""
    if url := server_url():
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{SERVER_URL_ENV} must look like http://host:port, got {url!r}")
        ssl = parts.scheme == "https"
        return chromadb.HttpClient(host=parts.hostname, port=parts.port or (443 if ssl else 8000), ssl=ssl,
                                   settings=Settings(anonymized_telemetry=False))
    Path(chroma_dir).mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(chroma_dir))


def scrub_local_store(chroma_dir: Path) -> None:
    """After writing to the embedded store, clear the HNSW files' uninitialised slots (see ``hnsw_files``)."""
    if not server_url():
        zero_unused_capacity(chroma_dir)


def collection(chroma_dir: Path, name: str = TEMPLATES_COLLECTION) -> Any:
    """Open (creating if needed) a persisted collection that embeds with MiniLM."""
    return open_collection(client(chroma_dir), name)


def content_hash(text: str) -> str:
    """Stable fingerprint of the embedded text; a change means the vector must be recomputed."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _metadata(template: dict) -> dict:
    meta = {
        "template_id": str(template["template_id"]),
        "service": str(template["service"]),
        "count": int(template["count"]),
        "first_seen": _iso(template["first_seen"]),
        "last_seen": _iso(template["last_seen"]),
        "content_hash": content_hash(template["template"]),
    }
    if template.get("level"):
        meta["level"] = str(template["level"])
    return meta


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def sync_template_vectors(templates: Iterable[dict], chroma_dir: Path, prune: bool = False) -> dict:
    """Bring the ``log_templates`` collection in line with ``templates``.

    Only new templates and templates whose text changed are embedded; count/first_seen/last_seen changes
    rewrite metadata only. With ``prune=True`` vectors of templates absent from ``templates`` are deleted.
    Returns ``{embedded, updated, unchanged, deleted, seconds}``.
    """
    start = time.perf_counter()
    chroma = client(chroma_dir)
    col = open_collection(chroma, TEMPLATES_COLLECTION)
    latest = {str(t["template_id"]): t for t in templates}
    stats = {"embedded": 0, "updated": 0, "unchanged": 0, "deleted": 0}
    batch = chroma.get_max_batch_size()
    for ids in _chunks(list(latest), batch):
        found = col.get(ids=ids, include=["metadatas"])
        stored = dict(zip(found["ids"], found["metadatas"]))
        embed_ids, update_ids = [], []
        for template_id in ids:
            old, new = stored.get(template_id), _metadata(latest[template_id])
            if old is None or old.get("content_hash") != new["content_hash"]:
                embed_ids.append(template_id)
            elif dict(old) != new:
                update_ids.append(template_id)
            else:
                stats["unchanged"] += 1
        if embed_ids:
            documents = [latest[i]["template"] for i in embed_ids]
            col.upsert(
                ids=embed_ids,
                documents=documents,
                embeddings=embed_texts(documents),
                metadatas=[_metadata(latest[i]) for i in embed_ids],
            )
            stats["embedded"] += len(embed_ids)
        if update_ids:
            col.update(ids=update_ids, metadatas=[_metadata(latest[i]) for i in update_ids])
            stats["updated"] += len(update_ids)
    if prune:
        stale = sorted(set(col.get(include=[])["ids"]) - latest.keys())
        for ids in _chunks(stale, batch):
            col.delete(ids=ids)
        stats["deleted"] = len(stale)
    scrub_local_store(chroma_dir)
    return {**stats, "seconds": round(time.perf_counter() - start, 3)}


def delete_template_vectors(ids: Iterable[str], chroma_dir: Path) -> int:
    """Delete the vectors of these template ids; returns how many existed."""
    col = collection(chroma_dir)
    ids = [str(i) for i in ids]
    present = col.get(ids=ids, include=[])["ids"] if ids else []
    if present:
        col.delete(ids=present)
        scrub_local_store(chroma_dir)
    return len(present)


def search_templates(query: str, chroma_dir: Path, k: int = 10, service: str | None = None) -> list[dict]:
    """Nearest templates to ``query`` (optionally one service's), best first, with cosine ``score``."""
    col = collection(chroma_dir)
    result = col.query(
        query_embeddings=embed_texts([query]),
        n_results=k,
        where={"service": service} if service else None,
        include=["documents", "metadatas", "distances"],
    )
    return [
        {**meta, "template": doc, "score": round(1.0 - distance, 4)}
        for doc, meta, distance in zip(result["documents"][0], result["metadatas"][0], result["distances"][0])
    ]
