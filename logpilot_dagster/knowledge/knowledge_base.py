"""Runbook + log-template knowledge base (LlamaIndex over Chroma) with a hybrid second-stage re-ranker.

Stage 1 recalls the nearest ``CANDIDATES`` runbook chunks and log templates by MiniLM cosine, plus the top
``CANDIDATES`` runbook chunks by BM25 over all chunks (so exact codes such as ``40P01`` are found). Stage 2
(:class:`HybridReranker`) re-scores those candidates with

    score = 0.6 * cosine + 0.3 * BM25 / max(BM25 over the candidates) + 0.1 * service_match

where BM25 is computed over the candidate texts only (runbook title, service and section; templates as
sentences), and ``service_match`` is 1 when the candidate's service is the requested one or is named in the
question. The lexical term rescues exact error tokens (``429``, ``SMTP 451``, ``JWT``) that small embedding
models blur; the service term keeps answers about the service being asked about on top.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.node_parser import MarkdownNodeParser
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores import ExactMatchFilter, MetadataFilters
from llama_index.core.vector_stores.utils import metadata_dict_to_node
from llama_index.vector_stores.chroma import ChromaVectorStore

from logpilot_dagster.knowledge.llama_embedding import MiniLMEmbedding
from logpilot_dagster.knowledge.vectors import TEMPLATES_COLLECTION, collection, scrub_local_store

RUNBOOKS_COLLECTION = "runbooks"
CANDIDATES = 20
KINDS = ("runbook", "template")

_SERVICE_LINE = re.compile(r"^\*\*Service:\*\*\s*([\w.-]+)", re.MULTILINE)
_TITLE_LINE = re.compile(r"^#\s+(.+)$", re.MULTILINE)
_STOPWORDS = frozenset(
    "a an and are as at be by for from how i in is it of on or the this to what when where which who why with"
    " does do did my our we".split()
)


@dataclass(frozen=True)
class Passage:
    """One retrieved piece of evidence: a runbook section or a log template described in words."""

    text: str
    source: str  # runbook path relative to the runbooks dir, or ``template:<template_id>``
    score: float
    kind: str  # 'runbook' | 'template'
    service: str | None = None
    title: str = ""


def _terms(text: str) -> list[str]:
    """Lower-case word tokens without stop words, with crude suffix stripping (declined/declines -> declin)."""
    terms = []
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        if word in _STOPWORDS:
            continue
        if len(word) > 4:
            for suffix in ("ing", "ed", "es", "s"):
                if word.endswith(suffix) and not word.endswith("ss"):
                    word = word[: -len(suffix)]
                    break
        terms.append(word[:-1] if len(word) > 3 and word.endswith("e") else word)
    return terms


def bm25_scores(query: str, documents: list[str], k1: float = 1.2, b: float = 0.75) -> list[float]:
    """Okapi BM25 of ``query`` against each document, with IDF taken over ``documents`` themselves."""
    docs = [Counter(_terms(d)) for d in documents]
    if not docs:
        return []
    avg_len = sum(sum(d.values()) for d in docs) / len(docs) or 1.0
    df = Counter(term for d in docs for term in d)
    scores = []
    for d in docs:
        length, total = sum(d.values()), 0.0
        for term in set(_terms(query)):
            tf = d.get(term, 0)
            if tf:
                idf = math.log(1 + (len(docs) - df[term] + 0.5) / (df[term] + 0.5))
                total += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg_len))
        scores.append(total)
    return scores


class HybridReranker(BaseNodePostprocessor):
    """Second stage: cosine (node score) + normalised BM25 over the candidates + service-match boost."""

    top_n: int = 5
    service: str | None = None
    cosine_weight: float = 0.6
    bm25_weight: float = 0.3
    service_weight: float = 0.1

    @classmethod
    def class_name(cls) -> str:
        return "HybridReranker"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        if not nodes or query_bundle is None:
            return nodes[: self.top_n]
        query = query_bundle.query_str
        lexical = bm25_scores(query, [n.node.get_content(MetadataMode.EMBED) for n in nodes])
        top_lexical = max(lexical) or 1.0
        asked = query.lower()
        rescored = []
        for node, bm25 in zip(nodes, lexical):
            service = node.node.metadata.get("service") or ""
            named = bool(service) and (service == self.service or service in asked or service.replace("-", " ") in asked)
            score = self.cosine_weight * (node.score or 0.0) + self.bm25_weight * bm25 / top_lexical
            rescored.append(NodeWithScore(node=node.node, score=score + self.service_weight * named))
        return sorted(rescored, key=lambda n: n.score, reverse=True)[: self.top_n]


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def runbook_nodes(source: str, text: str, digest: str = "") -> list[TextNode]:
    """One node per markdown section; ``digest`` (the file's hash) is kept in the metadata, not embedded."""
    title = _TITLE_LINE.search(text)
    service = _SERVICE_LINE.search(text)
    metadata = {
        "title": title.group(1).strip() if title else source,
        "service": service.group(1) if service and service.group(1) != "all" else "",
        "source": source,
        "file_hash": digest,
    }
    document = Document(text=text, id_=source, metadata=metadata)
    nodes = MarkdownNodeParser(include_prev_next_rel=False).get_nodes_from_documents([document])
    for i, node in enumerate(nodes):
        # Title and service are embedded with every section; bookkeeping keys are not.
        node.id_ = f"{source}#{i}"
        node.excluded_embed_metadata_keys = ["source", "file_hash", "header_path"]
        node.excluded_llm_metadata_keys = ["source", "file_hash", "header_path"]
    return nodes


def _template_sentence(meta: dict, template: str) -> str:
    level = f"{meta['level']} " if meta.get("level") else ""
    return (
        f"Service {meta.get('service')} logs the {level}message '{template}' {meta.get('count')} times "
        f"between {str(meta.get('first_seen'))[:10]} and {str(meta.get('last_seen'))[:10]}."
    )


class KnowledgeBase:
    """Markdown runbooks (chunked by heading) and log templates, searchable with re-ranking."""

    def __init__(self, chroma_dir: Path, runbooks_dir: Path):
        self.chroma_dir = Path(chroma_dir)
        self.runbooks_dir = Path(runbooks_dir)
        self._embed_model = MiniLMEmbedding()
        self._runbook_collection = collection(self.chroma_dir, RUNBOOKS_COLLECTION)
        self._runbook_store = ChromaVectorStore(chroma_collection=self._runbook_collection)
        self._runbooks = VectorStoreIndex.from_vector_store(self._runbook_store, embed_model=self._embed_model)
        self._templates = VectorStoreIndex.from_vector_store(
            ChromaVectorStore(chroma_collection=collection(self.chroma_dir, TEMPLATES_COLLECTION)),
            embed_model=self._embed_model,
        )

    def build(self) -> dict:
        """Index new and changed runbooks, drop deleted ones; unchanged files are skipped (idempotent)."""
        stored = {
            meta["source"]: meta["file_hash"]
            for meta in self._runbook_collection.get(include=["metadatas"])["metadatas"]
        }
        current = {
            path.relative_to(self.runbooks_dir).as_posix(): path for path in sorted(self.runbooks_dir.rglob("*.md"))
        }
        stats = {"added": 0, "updated": 0, "removed": 0, "unchanged": 0, "chunks": 0}
        for source in stored.keys() - current.keys():
            self._runbook_store.delete(ref_doc_id=source)
            stats["removed"] += 1
        nodes: list[TextNode] = []
        for source, path in current.items():
            digest = _file_hash(path)
            if stored.get(source) == digest:
                stats["unchanged"] += 1
                continue
            if source in stored:
                self._runbook_store.delete(ref_doc_id=source)
            nodes += runbook_nodes(source, path.read_text(encoding="utf-8"), digest)
            stats["updated" if source in stored else "added"] += 1
        if nodes:  # one insert: the embedder batches every file's chunks by length together
            self._runbooks.insert_nodes(nodes)
        stats["chunks"] = len(nodes)
        scrub_local_store(self.chroma_dir)
        return stats

    refresh = build

    def search(
        self, query: str, k: int = 5, service: str | None = None, kinds: tuple[str, ...] = KINDS
    ) -> list[Passage]:
        """Top ``k`` passages for ``query``; ``service`` restricts templates and boosts that service's runbooks."""
        bundle = QueryBundle(query_str=query, embedding=self._embed_model.get_query_embedding(query))
        candidates = []
        if "runbook" in kinds:
            candidates += self._runbook_recall(bundle)
        if "template" in kinds:
            filters = MetadataFilters(filters=[ExactMatchFilter(key="service", value=service)]) if service else None
            for hit in self._recall(self._templates, bundle, filters):
                meta = hit.node.metadata
                sentence = _template_sentence(meta, hit.node.get_content(MetadataMode.NONE))
                candidates.append(
                    NodeWithScore(node=TextNode(text=sentence, id_=hit.node.node_id, metadata=meta), score=hit.score)
                )
        ranked = HybridReranker(top_n=k, service=service).postprocess_nodes(candidates, query_bundle=bundle)
        return [self._passage(hit) for hit in ranked]

    def _runbook_recall(self, bundle: QueryBundle) -> list[NodeWithScore]:
        """Vector top ``CANDIDATES`` plus BM25 top ``CANDIDATES`` over all chunks (exact codes like ``40P01``)."""
        hits = {hit.node.node_id: hit for hit in self._recall(self._runbooks, bundle, None)}
        chunks = self._runbook_collection.get(include=["documents", "metadatas", "embeddings"])
        nodes = [metadata_dict_to_node(meta, text=doc) for meta, doc in zip(chunks["metadatas"], chunks["documents"])]
        lexical = bm25_scores(bundle.query_str, [node.get_content(MetadataMode.EMBED) for node in nodes])
        query = np.asarray(bundle.embedding)
        for i in sorted(range(len(nodes)), key=lexical.__getitem__, reverse=True)[:CANDIDATES]:
            if lexical[i] > 0 and nodes[i].node_id not in hits:
                hits[nodes[i].node_id] = NodeWithScore(node=nodes[i], score=float(query @ chunks["embeddings"][i]))
        return list(hits.values())

    @staticmethod
    def _recall(index: VectorStoreIndex, bundle: QueryBundle, filters: MetadataFilters | None) -> list[NodeWithScore]:
        hits = index.as_retriever(similarity_top_k=CANDIDATES, filters=filters).retrieve(bundle)
        # ChromaVectorStore scores exp(-distance); in cosine space distance = 1 - cosine.
        return [NodeWithScore(node=h.node, score=1.0 + math.log(h.score)) for h in hits if h.score]

    @staticmethod
    def _passage(hit: NodeWithScore) -> Passage:
        meta = hit.node.metadata
        is_runbook = "file_hash" in meta
        return Passage(
            text=hit.node.get_content(MetadataMode.NONE),
            source=meta["source"] if is_runbook else f"template:{meta.get('template_id', hit.node.node_id)}",
            score=round(hit.score, 4),
            kind="runbook" if is_runbook else "template",
            service=meta.get("service") or None,
            title=meta["title"] if is_runbook else f"{meta.get('service')} log template",
        )
