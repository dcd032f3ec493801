"""One clear log line per condition instead of the Kafka clients' repeated warnings.

- "Task ... ran for 0.2s ... blocking the event loop": kafka-python times each step of its network loop; decoding
  a large fetch on the consumer thread takes longer than its 0.1 s threshold. Harmless here; it said so every run.
- "No node available for metadata refresh": several times a second while the broker is down.
- confluent-kafka (librdkafka, through the ``confluent_kafka`` logger): "Connection refused", "Disconnected" and
  "brokers are down" for every connection attempt while the broker is down.
- After a SIGKILL, Python's resource tracker warns about the worker's "leaked semaphore" objects (its stage
  queues) while it cleans them up; the next worker says instead that its predecessor did not stop cleanly.

Each condition is logged once, then again at most every ``REPEAT_S`` with the number of lines it stood for.
"""

from __future__ import annotations

import logging
import sys
import time

REPEAT_S = 300.0
CONDITIONS = {  # (logger, what its message contains: any of these) -> the line that stands for it
    ("kafka.net.selector", ("blocking the event loop",)):
        "kafka-python: a network step took over its 0.1 s warning threshold (large fetches are decoded on the "
        "consumer thread); harmless, repeats are not shown",
    ("kafka.cluster", ("No node available",)):
        "kafka-python: no broker reachable; retrying quietly until it answers",
    ("confluent_kafka", ("Connection refused", "Disconnected", "brokers are down")):
        "confluent-kafka: no broker reachable; retrying quietly until it answers",
}
_TRACKER_WARNING = "ignore:resource_tracker:UserWarning"


class OneLinePerCondition(logging.Filter):
    """Replaces the records of one condition by its clear line, once per ``REPEAT_S``."""

    def __init__(self, needles: tuple[str, ...], line: str) -> None:
        super().__init__()
        self.needles, self.line = needles, line
        self.last_at: float | None = None
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not any(needle in message for needle in self.needles):
            return True
        now = time.monotonic()
        if self.last_at is not None and now - self.last_at < REPEAT_S:
            self.suppressed += 1
            return False
        repeats = f" ({self.suppressed} similar lines in the last {REPEAT_S:.0f}s)" if self.suppressed else ""
        record.msg, record.args = self.line + repeats, ()
        self.last_at, self.suppressed = now, 0
        return True


def quiet_kafka_logs() -> None:
    """Install the filters (idempotent) and keep the resource tracker's leak warning out of the log: it starts
    with this process's ``-W`` options."""
    for (name, needles), line in CONDITIONS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, OneLinePerCondition) for f in logger.filters):
            logger.addFilter(OneLinePerCondition(needles, line))
    if _TRACKER_WARNING not in sys.warnoptions:
        sys.warnoptions.append(_TRACKER_WARNING)
