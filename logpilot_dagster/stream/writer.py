"""The worker's pipeline behind the consumer: a transform process, then a DuckDB write process.

Each stage costs about as much CPU per record as kafka-python's decoding in the consumer, so each gets its own
process: screening and the shared ``LineTransformer`` in one (one, so the miner sees batches in order), the
DuckDB transactions in another, strictly in submission order, one transaction per batch. A thread of the
consumer process hands batches from one stage to the next. At most ``QUEUED`` batches wait for the writer,
which bounds memory and lets a slow warehouse hold the consumer back.

The children ignore SIGINT/SIGTERM (the consumer decides when to stop) and, on Linux, die with their parent:
after a SIGKILL of the worker no orphan can commit a batch behind the back of the restarted worker (a
transaction cut short is rolled back by DuckDB).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

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
    committed_at: float  # epoch seconds, taken right after COMMIT: from then on the rows are visible


_builder: BatchBuilder | None = None


def _start_child(parent_pid: int, paths: LogPilotPaths | None) -> None:
    """Initialise a stage process; the transform stage gets ``paths`` (its registry lives in the child)."""
    global _builder
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)
    if paths is not None:
        _builder = BatchBuilder(paths)


def _stage(paths: LogPilotPaths | None) -> ProcessPoolExecutor:
    """A one-process pool whose process starts now (while the consumer connects), not with the first batch."""
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_child,
                               initargs=(os.getpid(), paths))
    pool.submit(int)
    return pool


def _transform(records: pa.Table, topic: str, t1_ms: int | None, now_ms: int) -> tuple[Batch, int]:
    """In the child: screen and transform one batch; returns it and the number of lines skipped (<= T1)."""
    _builder.refresh()
    screened = screen(records, topic, t1_ms, now_ms)
    batch, late = _builder.build(topic, screened, t1_ms, now_ms)
    return batch, screened.skipped_before_t1 + late


def _commit(db_path: Path, batch: Batch) -> tuple[int, float]:
    """In the write process: one transaction; returns rows inserted and when it committed."""
    return write_batch(db_path, batch), time.time()


class BatchWriter:
    """Submit consumed records; collect ``Written`` outcomes in order."""

    def __init__(self, paths: LogPilotPaths, topic: str, t1_ms: int | None) -> None:
        self.db_path = paths.db_path
        self.topic = topic
        self.t1_ms = t1_ms
        self._transformer, self._writer = _stage(paths), _stage(None)
        self._transforming: queue.Queue[tuple[Future, int] | None] = queue.Queue(maxsize=QUEUED)
        self._done: queue.Queue[Written] = queue.Queue()
        self._error: BaseException | None = None
        self._in_flight = 0
        self._thread = threading.Thread(target=self._write_loop, name="logpilot-duckdb-writer", daemon=True)
        self._thread.start()

    @property
    def in_flight(self) -> int:
        """Batches submitted and not yet returned by ``results``/``finish``."""
        return self._in_flight

    def submit(self, records: list, now_ms: int) -> None:
        """Queue a batch (blocks while ``QUEUED`` batches wait to be written)."""
        future = self._transformer.submit(_transform, records_table(records), self.topic, self.t1_ms, now_ms)
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
        """Stop both stages. After an error, batches not committed are dropped: DuckDB's offsets do not cover
        them, so the next run consumes them again."""
        if self._thread.is_alive() and self._error is None:
            self._transforming.put(None)
            self._thread.join()
        for pool in (self._transformer, self._writer):
            pool.shutdown(wait=True, cancel_futures=True)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError("live ingestion pipeline failed") from self._error

    def _write_loop(self) -> None:
        try:
            while (item := self._transforming.get()) is not None:
                future, consumed = item
                batch, skipped = future.result()
                inserted, committed_at = self._writer.submit(_commit, self.db_path, batch).result()
                self._done.put(Written(consumed, inserted, skipped, batch.quarantine.num_rows, batch.next_offsets,
                                       committed_at))
        except BaseException as exc:  # surfaced to the consumer thread by submit/results/finish
            self._error = exc
