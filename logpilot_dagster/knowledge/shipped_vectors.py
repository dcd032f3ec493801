"""Vectors of the shipped runbooks' sections, computed once at release so a fresh home indexes them without
running the model (about 2 CPU s per home). Keyed by the SHA-256 of the exact text embedded, so an edited or new
section misses and is embedded as usual; vectors of another model are ignored.

Regenerate after editing ``data/runbooks``: ``uv run python -m logpilot_dagster.knowledge.shipped_vectors``
(a test fails while a shipped section is missing or its vector differs from the model's)."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import numpy as np

PATH = Path(__file__).resolve().parent.parent / "resources" / "minilm" / "runbook_vectors.npz"


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@cache
def shipped(model_name: str) -> dict[str, np.ndarray]:
    """Text key -> unit vector, for ``model_name`` (empty when the file is absent or from another model)."""
    if not PATH.exists():
        return {}
    with np.load(PATH) as stored:
        if str(stored["model"]) != model_name:
            return {}
        return dict(zip(stored["keys"].tolist(), stored["vectors"]))


def runbook_texts(runbooks_dir: Path) -> list[str]:
    """The texts the knowledge base embeds for the runbooks in ``runbooks_dir`` (one per section)."""
    from llama_index.core.schema import MetadataMode

    from logpilot_dagster.knowledge.knowledge_base import runbook_nodes

    return [node.get_content(metadata_mode=MetadataMode.EMBED)
            for path in sorted(runbooks_dir.rglob("*.md"))
            for node in runbook_nodes(path.relative_to(runbooks_dir).as_posix(), path.read_text(encoding="utf-8"))]


def main() -> None:
    from logpilot_dagster.knowledge.embeddings import MODEL_NAME, load_model
    from logpilot_dagster.settings import SHIPPED_DATA

    texts = sorted(set(runbook_texts(SHIPPED_DATA / "runbooks")))
    vectors = load_model().embed(texts)
    np.savez(PATH, model=np.array(MODEL_NAME), keys=np.array([text_key(t) for t in texts]), vectors=vectors)
    print(f"{len(texts)} section vectors of {MODEL_NAME} -> {PATH}")


if __name__ == "__main__":
    main()
