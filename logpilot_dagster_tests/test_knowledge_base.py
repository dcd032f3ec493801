"""Runbook knowledge base: incremental ingestion, template documents, and re-ranked retrieval quality."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from logpilot_dagster.knowledge.embeddings import MODEL_NAME, load_model
from logpilot_dagster.knowledge.knowledge_base import KnowledgeBase, bm25_scores
from logpilot_dagster.knowledge.shipped_vectors import runbook_texts, shipped, text_key
from logpilot_dagster.settings import SHIPPED_DATA
from logpilot_dagster.knowledge.vectors import sync_template_vectors

RUNBOOKS = SHIPPED_DATA / "runbooks"

#: question -> runbook expected among the first three distinct runbooks.
GOLDEN = {
    "payment gateway timeouts": "payments-api-gateway-timeouts.md",
    "deadlock": "inventory-db-deadlocks.md",
    "customers' cards keep getting rejected": "payments-api-card-declines.md",
    "brute force attack on the login endpoint": "auth-service-login-failures.md",
    "users are logged out, tokens rejected after key rotation": "auth-service-jwt-signature-invalid.md",
    "ssl certificate expired": "edge-gateway-tls-handshake-failures.md",
    "emails are not being delivered, queue keeps growing": "notification-worker-smtp-451-backlog.md",
    "java heap space": "search-indexer-out-of-memory.md",
    "no space left on device": "data-pipeline-disk-full-executor-lost.md",
    "too many connections": "inventory-db-too-many-connections.md",
    "502 bad gateway": "checkout-web-upstream-timeouts-502.md",
    "which service has the highest error rate": "general-error-spike-triage.md",
}


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    chroma = tmp_path_factory.mktemp("chroma")
    sync_template_vectors(
        [
            {"template_id": "tpl-gw", "template": "Payment gateway timeout after <*> ms", "service": "payments-api",
             "count": 1234, "first_seen": "2021-01-04T08:00:00", "last_seen": "2025-06-30T23:10:00", "level": "ERROR"},
            {"template_id": "tpl-dl", "template": "deadlock detected", "service": "inventory-db",
             "count": 87, "first_seen": "2022-02-01T00:00:00", "last_seen": "2024-12-24T00:00:00"},
        ],
        chroma,
    )
    base = KnowledgeBase(chroma, RUNBOOKS)
    base.build()
    return base


def _runbooks(kb, question, k=10):
    return list(dict.fromkeys(p.source for p in kb.search(question, k=k, kinds=("runbook",))))


def test_the_right_runbook_comes_first(kb):
    assert _runbooks(kb, "payment gateway timeouts")[0] == "payments-api-gateway-timeouts.md"
    assert _runbooks(kb, "deadlock")[0] == "inventory-db-deadlocks.md"


def test_hit_at_3_on_golden_questions(kb):
    misses = {q: _runbooks(kb, q)[:3] for q, expected in GOLDEN.items() if expected not in _runbooks(kb, q)[:3]}
    assert not misses


def test_exact_codes_are_found_lexically(kb):
    # "40P01" means nothing to the embedding model; BM25 recall brings the deadlock runbook in.
    assert _runbooks(kb, "error 40P01")[0] == "inventory-db-deadlocks.md"


def test_templates_are_returned_as_semantic_documents(kb):
    hits = [p for p in kb.search("payment gateway timeout", k=10) if p.kind == "template"]
    assert hits[0].source == "template:tpl-gw"
    assert hits[0].text == (
        "Service payments-api logs the ERROR message 'Payment gateway timeout after <*> ms' 1234 times "
        "between 2021-01-04 and 2025-06-30."
    )


def test_service_restricts_templates(kb):
    hits = kb.search("deadlock detected", k=10, service="payments-api")
    assert {p.source for p in hits if p.kind == "template"} == {"template:tpl-gw"}
    assert all(p.kind in ("runbook", "template") and p.score > 0 for p in hits)


def test_build_is_incremental_by_file_hash(tmp_path):
    books = tmp_path / "runbooks"
    books.mkdir()
    for name in ("inventory-db-deadlocks.md", "edge-gateway-tls-handshake-failures.md"):
        shutil.copy(RUNBOOKS / name, books / name)
    kb = KnowledgeBase(tmp_path / "chroma", books)
    assert kb.build()["added"] == 2
    assert kb.build() == {"added": 0, "updated": 0, "removed": 0, "unchanged": 2, "chunks": 0}

    deadlocks = books / "inventory-db-deadlocks.md"
    deadlocks.write_text(deadlocks.read_text() + "\n## Postmortems\n\nSee the zebra-striped lock dashboard.\n")
    (books / "edge-gateway-tls-handshake-failures.md").unlink()
    stats = kb.refresh()
    assert (stats["updated"], stats["removed"], stats["unchanged"]) == (1, 1, 0)
    assert {p.source for p in kb.search("TLS handshake failed certificate", k=20)} == {"inventory-db-deadlocks.md"}
    assert "zebra" in kb.search("zebra-striped lock dashboard", k=1)[0].text


def test_bm25_prefers_documents_with_the_query_terms():
    scores = bm25_scores("card declined", ["charge failed: card declined", "deadlock detected", "cards declines"])
    assert scores[0] > 0 and scores[2] > 0 and scores[1] == 0


def test_shipped_vectors_cover_every_shipped_section_and_are_the_models():
    """Fails when data/runbooks changed without `python -m logpilot_dagster.knowledge.shipped_vectors`."""
    texts = runbook_texts(RUNBOOKS)
    table = shipped(MODEL_NAME)
    missing = [t[:60] for t in texts if text_key(t) not in table]
    assert not missing, missing
    cached = np.stack([table[text_key(t)] for t in texts])
    fresh = load_model().embed(texts)
    assert float((cached * fresh).sum(axis=1).min()) > 0.9999


_BUILD = """
import sys
from pathlib import Path
from logpilot_dagster.knowledge import embeddings
from logpilot_dagster.knowledge.knowledge_base import KnowledgeBase
stats = KnowledgeBase(Path(sys.argv[1]), Path(sys.argv[2])).build()
print(stats["chunks"], embeddings._model is not None)
"""


def test_a_fresh_home_indexes_shipped_sections_without_the_model_and_edited_ones_with_it(tmp_path):
    runbooks = tmp_path / "runbooks"
    shutil.copytree(RUNBOOKS, runbooks)
    run = lambda chroma: subprocess.run([sys.executable, "-c", _BUILD, str(tmp_path / chroma), str(runbooks)],
                                        capture_output=True, text=True, check=True).stdout.split()
    assert run("shipped") == [str(len(runbook_texts(RUNBOOKS))), "False"]
    edited = runbooks / "inventory-db-deadlocks.md"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n## Escalation\nPage the DBA on call.\n", encoding="utf-8")
    chunks, loaded = run("edited")
    assert loaded == "True"
    kb = KnowledgeBase(tmp_path / "edited", runbooks)
    assert kb.search("page the DBA on call", k=1)[0].source == "inventory-db-deadlocks.md"
