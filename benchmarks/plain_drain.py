"""The live benchmark's baseline: a plain kafka-python consumer that only drains a topic (no parsing, no DB).

It runs in a process of its own, with nothing but kafka-python loaded, so that no other objects on its heap slow
its garbage collections. Prints ``{"seconds": ..., "cpu_s": ...}`` for reading ``EXPECTED`` records from the
beginning of every partition (the consumer's start-up and metadata lookups excluded).

    python benchmarks/plain_drain.py CLIENT_CONFIG_JSON TOPIC EXPECTED
"""

from __future__ import annotations

import json
import resource
import sys
import time

from kafka import KafkaConsumer, TopicPartition


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    config, topic, expected = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    consumer = KafkaConsumer(**config)
    consumer.assign([TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))])
    consumer.seek_to_beginning()
    seen, t0, cpu0 = 0, time.perf_counter(), cpu_seconds()
    while seen < expected:
        for records in consumer.poll(timeout_ms=1000).values():
            seen += len(records)
    print(json.dumps({"seconds": time.perf_counter() - t0, "cpu_s": cpu_seconds() - cpu0}))
    consumer.close()


if __name__ == "__main__":
    main()
