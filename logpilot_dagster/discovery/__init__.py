"""Schema discovery: propose a format rule for an unknown source from its samples (offline: a timestamp layout
library and token classes; optionally an OpenAI-compatible LLM, sent masked samples), validate it on held-out
samples, version it in the registry, and re-parse the source's parked lines once a rule is accepted. Imports only
llm, ingest, privacy, storage and settings."""
