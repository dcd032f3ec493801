"""Schema discovery: propose a format rule for an unknown source from its samples (offline: a timestamp layout
library and token classes), validate it on held-out samples, version it in the registry, and re-parse the
source's parked lines once a rule is accepted. Imports only ingest, storage and settings."""
