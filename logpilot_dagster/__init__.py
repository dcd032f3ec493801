"""LogPilot: raw logs into a queryable, searchable, privacy-safe store, kept live from Kafka."""
