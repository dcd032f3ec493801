"""kafka-python's repeated warnings become one clear line per condition."""

import logging

from logpilot_dagster.stream.client_noise import CONDITIONS, OneLinePerCondition, quiet_kafka_logs


def test_each_noisy_condition_logs_one_clear_line(caplog):
    for name, _ in CONDITIONS:  # filters installed by earlier tests in this process remember their last line
        logger = logging.getLogger(name)
        for installed in [f for f in logger.filters if isinstance(f, OneLinePerCondition)]:
            logger.removeFilter(installed)
    quiet_kafka_logs()
    quiet_kafka_logs()  # idempotent
    with caplog.at_level(logging.WARNING):
        for _ in range(50):
            logging.getLogger("kafka.cluster").warning("No node available for metadata refresh - backoff/retry")
            logging.getLogger("kafka.net.selector").warning(
                "Task %r ran for %.3fs (>%.3fs threshold). It is blocking the event loop -- likely a tight sync loop",
                "fetch", 0.25, 0.1)
        logging.getLogger("kafka.cluster").warning("Topic logpilot.raw not found in cluster metadata")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["kafka-python: no broker reachable; retrying quietly until it answers",
                        "kafka-python: a network step took over its 0.1 s warning threshold (large fetches are "
                        "decoded on the consumer thread); harmless, repeats are not shown",
                        "Topic logpilot.raw not found in cluster metadata"]  # other warnings pass unchanged
