"""Offline MiniLM embeddings, their Chroma persistence, and incremental template-vector sync."""

import json
import subprocess
import sys

import chromadb
import numpy as np
import pytest

from logpilot_dagster.knowledge.embeddings import DIMENSION, embed_texts, open_collection
from logpilot_dagster.knowledge.llama_embedding import MiniLMEmbedding
from logpilot_dagster.knowledge.vectors import delete_template_vectors, search_templates, sync_template_vectors


def test_vectors_are_384_dimensional_and_unit_length():
    vectors = embed_texts(["Payment gateway timeout after 30000 ms", "deadlock detected", "x"])
    assert vectors.shape == (3, DIMENSION)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_related_sentences_are_closer_than_unrelated_ones():
    pairs = [
        ("payment gateway timeout", "the payment provider timed out"),
        ("deadlock detected while updating stock rows", "database deadlock between two transactions"),
        ("TLS handshake failed: certificate expired", "the SSL certificate of the site has lapsed"),
    ]
    vectors = embed_texts([text for pair in pairs for text in pair])
    sims = vectors @ vectors.T
    for i in range(len(pairs)):
        related = float(sims[2 * i, 2 * i + 1])
        unrelated = max(float(sims[2 * i, j]) for j in range(len(vectors)) if j // 2 != i)
        assert related > unrelated + 0.1, (pairs[i], related, unrelated)


def test_batch_padding_does_not_change_a_vector():
    alone = embed_texts(["card declined"])[0]
    batched = embed_texts(["card declined", "connection pool exhausted: 50 active, 120 waiting " * 40])[0]
    assert float(alone @ batched) > 0.9999


def test_llamaindex_wrapper_matches_the_model():
    text = "TLS handshake failed: certificate expired"
    assert np.allclose(MiniLMEmbedding().get_text_embedding(text), embed_texts([text])[0], atol=1e-6)


REOPEN = """
import json, sys, chromadb
from logpilot_dagster.knowledge.embeddings import open_collection
col = open_collection(chromadb.PersistentClient(path=sys.argv[1]), "reopen-test")
print(json.dumps(col.query(query_texts=["database deadlock"], n_results=3)["ids"][0]))
"""


def test_collection_reopened_in_a_fresh_process_returns_the_same_neighbours(tmp_path):
    col = open_collection(chromadb.PersistentClient(path=str(tmp_path)), "reopen-test")
    docs = ["deadlock detected", "card declined", "TLS handshake failed", "too many connections", "email sent"]
    col.add(ids=[f"d{i}" for i in range(len(docs))], documents=docs)
    here = col.query(query_texts=["database deadlock"], n_results=3)["ids"][0]
    out = subprocess.run([sys.executable, "-c", REOPEN, str(tmp_path)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == here
    assert here[0] == "d0"


def _template(i, text, service="payments-api", count=10):
    return {"template_id": f"t{i}", "template": text, "service": service, "count": count,
            "first_seen": "2021-03-01T00:00:00", "last_seen": "2024-11-29T10:00:00"}


@pytest.fixture
def templates():
    return [
        _template(0, "Payment gateway timeout after <*> ms"),
        _template(1, "Charge failed for order <*>: card declined"),
        _template(2, "deadlock detected", service="inventory-db"),
        _template(3, "SMTP 451 temporary failure", service="notification-worker"),
    ]


def test_sync_embeds_only_new_or_changed_templates(tmp_path, templates):
    assert sync_template_vectors(templates, tmp_path)["embedded"] == 4
    again = sync_template_vectors(templates, tmp_path)
    assert (again["embedded"], again["updated"], again["unchanged"]) == (0, 0, 4)

    templates[0] = {**templates[0], "count": 999, "last_seen": "2025-01-01T00:00:00"}
    templates[1] = {**templates[1], "template": "Refund issued for order <*>"}
    stats = sync_template_vectors(templates, tmp_path)
    assert (stats["embedded"], stats["updated"], stats["unchanged"]) == (1, 1, 2)

    hits = search_templates("payment gateway timeout", tmp_path, k=1)
    assert hits[0]["template_id"] == "t0" and hits[0]["count"] == 999
    assert search_templates("refund", tmp_path, k=1)[0]["template_id"] == "t1"


def test_prune_and_right_to_be_forgotten_delete(tmp_path, templates):
    sync_template_vectors(templates, tmp_path)
    assert sync_template_vectors(templates[:3], tmp_path)["deleted"] == 0
    assert sync_template_vectors(templates[:3], tmp_path, prune=True)["deleted"] == 1
    assert delete_template_vectors(["t2", "never-existed"], tmp_path) == 1
    remaining = {h["template_id"] for h in search_templates("anything", tmp_path, k=10)}
    assert remaining == {"t0", "t1"}


def test_search_can_be_restricted_to_one_service(tmp_path, templates):
    sync_template_vectors(templates, tmp_path)
    hits = search_templates("deadlock detected", tmp_path, k=10, service="payments-api")
    assert hits and {h["service"] for h in hits} == {"payments-api"}
