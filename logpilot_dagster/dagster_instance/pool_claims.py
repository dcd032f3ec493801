"""A step claim that takes a free pool slot nobody was given (see the package docstring)."""
from dagster._core.storage.event_log.base import ConcurrencyClaimStatus


class PoolSafeClaims:
    """Mixin for a SQL event log storage: a blocked, unassigned claim that finds a free slot assigns the queue's
    head and claims again, so the next retry (1-15 s, Dagster's backoff) recovers. Assigning one step too many is
    harmless: the slot rows are still the semaphore."""

    def claim_concurrency_slot(self, concurrency_key: str, run_id: str, step_key: str,
                               priority: int | None = None) -> ConcurrencyClaimStatus:
        status = super().claim_concurrency_slot(concurrency_key, run_id, step_key, priority)
        if status.is_claimed or status.is_assigned or not self.has_unassigned_slots(concurrency_key):
            return status
        self.assign_pending_steps([concurrency_key])
        return super().claim_concurrency_slot(concurrency_key, run_id, step_key, priority)
