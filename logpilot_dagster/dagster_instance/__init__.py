"""Dagster instance storage with pool steps that cannot be stranded (``dagster.yaml``), one module per backend.

Dagster 1.13's step claim checks for a free slot, then queues the step unassigned in a second statement. A slot
freed between the two (the other run's load finishing at that moment) assigns nobody, and the queued step then
waits forever ("Step still blocked by limit for pool duckdb_writer" every 5 minutes, no slot claimed): a
two-year UI backfill hung so on a clean clone, its waiting run spinning a core (the executor never sleeps between
claim checks). ``pool_claims.PoolSafeClaims`` fixes both; ``sqlite_storage`` (the embedded default) and
``postgres_storage`` (production) apply it to Dagster's own storages."""
