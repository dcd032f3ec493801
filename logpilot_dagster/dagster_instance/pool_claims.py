"""Step claims on a pool that neither strand a step nor spin a core while it waits (see the package docstring)."""
import time

from dagster._core.storage.event_log.base import ConcurrencyClaimStatus

#: How long a blocked claim waits here before the executor asks again (at once: ``sleep_interval`` 0).
BLOCKED_WAIT_S = 0.25


class PoolSafeClaims:
    """Mixin for a SQL event log storage's ``claim_concurrency_slot``.

    - A blocked, unassigned claim that finds a free slot assigns the queue's head and claims again. Assigning one
      step too many is harmless: the slot rows are still the semaphore.
    - A claim that stays blocked waits ``BLOCKED_WAIT_S`` and asks to be retried at once. Dagster 1.13's executor
      does not sleep between its own checks (``interval_to_next_pending_claim_check`` is never positive), so a
      step waiting for the pool kept a core busy (a stranded run: 58 CPU minutes) and slowed the load it waited
      for; this wait is its pause, and a freed slot is taken within a quarter second instead of Dagster's 1-15 s
      backoff."""

    def claim_concurrency_slot(self, concurrency_key: str, run_id: str, step_key: str,
                               priority: int | None = None) -> ConcurrencyClaimStatus:
        status = super().claim_concurrency_slot(concurrency_key, run_id, step_key, priority)
        if not status.is_claimed and not status.is_assigned and self.has_unassigned_slots(concurrency_key):
            self.assign_pending_steps([concurrency_key])
            status = super().claim_concurrency_slot(concurrency_key, run_id, step_key, priority)
        if status.is_claimed:
            return status
        time.sleep(BLOCKED_WAIT_S)
        return status.with_sleep_interval(0.0)
