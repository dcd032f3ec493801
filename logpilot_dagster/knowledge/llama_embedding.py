"""The process-wide MiniLM as a LlamaIndex embedding model (kept apart: only the runbook index imports LlamaIndex)."""

from __future__ import annotations

from llama_index.core.base.embeddings.base import BaseEmbedding

from logpilot_dagster.knowledge.embeddings import MODEL_NAME, embed_texts

#: Texts LlamaIndex hands over per call; the embedder batches them by length itself.
BATCH_SIZE = 256


class MiniLMEmbedding(BaseEmbedding):
    """LlamaIndex embedding model backed by the same process-wide MiniLM."""

    model_name: str = MODEL_NAME
    embed_batch_size: int = BATCH_SIZE

    @classmethod
    def class_name(cls) -> str:
        return "MiniLMEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return embed_texts([query])[0].tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return embed_texts([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return embed_texts(texts).tolist()
