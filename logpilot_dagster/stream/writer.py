"""The worker's write side, in a child process so that fetching overlaps screening, transforming and writing.

kafka-python decodes records in pure Python and the transformer holds the GIL for part of its work, so a thread
would not overlap them. The consumer process only turns records into Arrow columns and submits them; the child
(one process, so batches commit strictly in submission order, one DuckDB transaction each) does the rest. At
most ``QUEUED`` batches are in flight, which bounds memory and lets a slow warehouse hold the consumer back.

The child ignores SIGINT/SIGTERM (the consumer process decides when to stop) and, on Linux, is killed with
its parent, so after a SIGKILL of the worker no orphan commits a batch behind the restarted worker's back.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import sys
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.stream.batches import BatchBuilder
from logpilot_dagster.stream.records import records_table, screen
from logpilot_dagster.stream.sink import write_batch

QUEUED = 3
_PR_SET_PDEATHSIG = 1


@dataclass
class Written:
    """The outcome of one committed batch."""

    consumed: int
    inserted: int
    skipped_before_t1: int
    quarantined: int
    next_offsets: dict[int, int]


_builder: BatchBuilder | None = None


def _start_child(paths: LogPilotPaths) -> None:
    global _builder
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    _builder = BatchBuilder(paths)


def _write(records: pa.Table, topic: str, t1_ms: int | None, now_ms: int) -> Written:
    _builder.refresh()
    screened = screen(records, topic, t1_ms, now_ms)
    batch, late = _builder.build(topic, screened, t1_ms, now_ms)
    inserted = write_batch(_builder.paths.db_path, batch)
    return Written(records.num_rows, inserted, screened.skipped_before_t1 + late, batch.quarantine.num_rows,
                   batch.next_offsets)


class BatchWriter:
    """Submit consumed records; collect ``Written`` outcomes in order."""

    def __init__(self, paths: LogPilotPaths, topic: str, t1_ms: int | None) -> None:
        self.topic = topic
        self.t1_ms = t1_ms
        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start_child, initargs=(paths,))
        self._in_flight: deque[Future] = deque()
        self._pool.submit(int).result()  # start the child now, not with the first batch

    @property
    def idle(self) -> bool:
        return not self._in_flight

    def submit(self, records: list, now_ms: int) -> list[Written]:
        """Queue a batch; returns outcomes that had to be awaited to keep at most ``QUEUED`` in flight."""
        self._in_flight.append(self._pool.submit(_write, records_table(records), self.topic, self.t1_ms, now_ms))
        done = []
        while len(self._in_flight) > QUEUED:
            done.append(self._in_flight.popleft().result())
        return done

    def results(self) -> list[Written]:
        """Outcomes of the batches committed so far, in order; re-raises a failed batch's error."""
        done = []
        while self._in_flight and self._in_flight[0].done():
            done.append(self._in_flight.popleft().result())
        return done

    def finish(self) -> list[Written]:
        """Wait for every batch in flight."""
        done = []
        while self._in_flight:
            done.append(self._in_flight.popleft().result())
        return done

    def close(self) -> None:
        """Stop the child; batches not committed yet are dropped (they will be consumed again)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
