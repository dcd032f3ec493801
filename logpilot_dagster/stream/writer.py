"""The worker's pipeline behind the consumer: a transform process and a DuckDB write thread.

kafka-python decodes records in pure Python, so the consumer thread keeps one core busy. Screening and the
shared ``LineTransformer`` run in one child process (one, so the miner sees batches in order); the batches it
returns are committed by a thread of the consumer process, strictly in submission order, one DuckDB transaction
each (DuckDB releases the GIL while it works). At most ``QUEUED`` batches wait between the stages, which bounds
memory and lets a slow warehouse hold the consumer back.

The child ignores SIGINT/SIGTERM (the consumer decides when to stop) and, on Linux, dies with its parent.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import queue
import signal
import sys
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.stream.batches import BatchBuilder
from logpilot_dagster.stream.records import records_table, screen
from logpilot_dagster.stream.sink import Batch, write_batch

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


def _transform(records: pa.Table, topic: str, t1_ms: int | None, now_ms: int) -> tuple[Batch, int]:
    """In the child: screen and transform one batch; returns it and the number of lines skipped (<= T1)."""
    _builder.refresh()
    screened = screen(records, topic, t1_ms, now_ms)
    batch, late = _builder.build(topic, screened, t1_ms, now_ms)
    return batch, screened.skipped_before_t1 + late


class BatchWriter:
    """Submit consumed records; collect ``Written`` outcomes in order."""

    def __init__(self, paths: LogPilotPaths, topic: str, t1_ms: int | None) -> None:
        self.db_path = paths.db_path
        self.topic = topic
        self.t1_ms = t1_ms
        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start_child, initargs=(paths,))
        self._pool.submit(int).result()  # start the child now, not with the first batch
        self._transforming: queue.Queue[tuple[Future, int] | None] = queue.Queue(maxsize=QUEUED)
        self._done: queue.Queue[Written] = queue.Queue()
        self._error: BaseException | None = None
        self._in_flight = 0
        self._thread = threading.Thread(target=self._write_loop, name="logpilot-duckdb-writer", daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        return self._in_flight == 0

    def submit(self, records: list, now_ms: int) -> None:
        """Queue a batch (blocks while ``QUEUED`` batches wait to be written)."""
        future = self._pool.submit(_transform, records_table(records), self.topic, self.t1_ms, now_ms)
        self._in_flight += 1
        while True:
            self._raise_if_failed()
            try:
                self._transforming.put((future, len(records)), timeout=0.2)
                return
            except queue.Full:
                continue

    def results(self) -> list[Written]:
        """Outcomes of the batches committed since the last call, in order; re-raises a pipeline failure."""
        done = []
        while True:
            try:
                done.append(self._done.get_nowait())
            except queue.Empty:
                break
        self._in_flight -= len(done)
        self._raise_if_failed()
        return done

    def finish(self) -> list[Written]:
        """Wait until everything submitted is committed."""
        done = []
        while self._in_flight > len(done):
            self._raise_if_failed()
            try:
                done.append(self._done.get(timeout=0.2))
            except queue.Empty:
                continue
        self._in_flight -= len(done)
        return done

    def close(self) -> None:
        """Stop both stages; batches not committed yet are dropped (they will be consumed again)."""
        if self._thread.is_alive() and self._error is None:
            self._transforming.put(None)
            self._thread.join()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError("live ingestion pipeline failed") from self._error

    def _write_loop(self) -> None:
        try:
            while (item := self._transforming.get()) is not None:
                future, consumed = item
                batch, skipped = future.result()
                inserted = write_batch(self.db_path, batch)
                self._done.put(Written(consumed, inserted, skipped, batch.quarantine.num_rows, batch.next_offsets))
        except BaseException as exc:  # surfaced to the consumer thread by submit/results/finish
            self._error = exc
