"""Knowledge: offline embeddings, template vectors and the runbook knowledge base (Chroma)."""
