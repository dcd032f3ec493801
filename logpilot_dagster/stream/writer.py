"""The worker's pipeline behind the consumer: a transform process, then a DuckDB write process.

Each stage costs about as much CPU per record as kafka-python's decoding in the consumer, so each gets its own
process: screening and the shared ``LineTransformer`` in one (one, so the miner sees batches in order), the
DuckDB transactions in another, strictly in submission order, one transaction per batch. Transformed batches go
straight from the transform process to the write process through a queue, so the consumer process (the
busiest) never copies them; it only sees small outcomes. At most ``QUEUED`` batches are in flight, which
bounds memory and lets a slow warehouse hold the consumer back. The write process keeps its DuckDB connection
while batches keep coming (``HeldConnection``) and lets go when idle or when another process waits for it.

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
from typing import TYPE_CHECKING

import pyarrow as pa

from logpilot_dagster.discovery.samples import publish_queue_counts
from logpilot_dagster.settings import LogPilotPaths

if TYPE_CHECKING:  # the stages import their modules in their own processes: the consumer skips them
    from logpilot_dagster.stream.batches import BatchBuilder
    from logpilot_dagster.storage.warehouse import HeldConnection

QUEUED = 3
_PR_SET_PDEATHSIG = 1
_SPAWN = multiprocessing.get_context("spawn")


@dataclass
class Written:
    """The outcome of one committed batch."""

    consumed: int
    inserted: int
    skipped_before_t1: int
    quarantined: int
    next_offsets: dict[int, int]
    last_record: dict[int, str]  # per partition, the fingerprint of the record before its next offset
    committed_at: float  # epoch seconds, taken right after COMMIT: from then on the rows are visible


_builder: BatchBuilder | None = None  # in the transform process
_held: HeldConnection | None = None  # in the write process
_handoff = None  # the queue between them


def _start_child(parent_pid: int, handoff, paths: LogPilotPaths | None, db_path: Path | None) -> None:
    """Initialise a stage process: the transform stage gets ``paths`` (its registry lives in the child), the
    write stage ``db_path``."""
    global _builder, _held, _handoff
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)
    _handoff = handoff
    if paths is not None:
        from logpilot_dagster.stream.batches import BatchBuilder

        _builder = BatchBuilder(paths)
    if db_path is not None:
        from logpilot_dagster.storage.warehouse import HeldConnection

        _held = HeldConnection(db_path)


def _stage(handoff, paths: LogPilotPaths | None, db_path: Path | None) -> tuple[ProcessPoolExecutor, Future]:
    """A one-process pool whose process starts now (while the consumer connects), not with the first batch;
    returns it with the future of its process id."""
    pool = ProcessPoolExecutor(1, mp_context=_SPAWN, initializer=_start_child,
                               initargs=(os.getpid(), handoff, paths, db_path))
    return pool, pool.submit(os.getpid)


def _transform(records: pa.Table, topic: str, t1_us: int | None, now_ms: int) -> int:
    """In the transform process: screen and transform one batch, hand it to the write process; returns the
    number of lines skipped (<= T1). A failure hands over ``None`` so the write process does not wait."""
    from logpilot_dagster.stream.records import screen

    try:
        _builder.refresh()
        screened = screen(records, topic, t1_us, now_ms)
        batch, late = _builder.build(topic, screened, t1_us, now_ms)
    except BaseException:
        _handoff.put(None)
        raise
    _handoff.put(batch)
    return screened.skipped_before_t1 + late


def _commit() -> tuple[int, int, dict[int, int], dict[int, str], float]:
    """In the write process: one transaction for the next transformed batch; returns rows inserted, rows
    quarantined, the next offsets, the fingerprints of the records before them and when it committed."""
    from logpilot_dagster.stream.sink import write_batch

    batch = _handoff.get()
    if batch is None:
        raise RuntimeError("the transform stage failed on this batch")
    with _held.use() as con:
        inserted = write_batch(con, batch)
        if batch.discovery.num_rows:  # lock-free counts for the sensor that starts discovery
            publish_queue_counts(con, _held.db_path.parent / "state")
    return inserted, batch.quarantine.num_rows, batch.next_offsets, batch.last_record, time.time()


def _release() -> None:
    """In the write process: close the held connection."""
    _held.close()


class BatchWriter:
    """Submit consumed records; collect ``Written`` outcomes in order."""

    def __init__(self, paths: LogPilotPaths, topic: str, t1_us: int | None) -> None:
        self.topic = topic
        self.t1_us = t1_us
        handoff = _SPAWN.Queue()
        self._transformer, self._transformer_pid = _stage(handoff, paths, None)
        self._writer, self._writer_pid = _stage(handoff, None, paths.db_path)
        self._pending: queue.Queue[tuple[Future, Future, int] | None] = queue.Queue(maxsize=QUEUED)
        self._done: queue.Queue[Written] = queue.Queue()
        self._error: BaseException | None = None
        self._in_flight = 0
        self._thread = threading.Thread(target=self._collect_loop, name="logpilot-batch-outcomes", daemon=True)
        self._thread.start()

    @property
    def in_flight(self) -> int:
        """Batches submitted and not yet returned by ``results``/``finish``."""
        return self._in_flight

    def submit(self, records: pa.Table, now_ms: int) -> None:
        """Queue a batch of consumed records, ``PendingRecords.take`` (blocks while ``QUEUED`` batches are in
        flight)."""
        transformed = self._transformer.submit(_transform, records, self.topic, self.t1_us, now_ms)
        committed = self._writer.submit(_commit)
        self._in_flight += 1
        while True:
            self._raise_if_failed()
            try:
                self._pending.put((transformed, committed, records.num_rows), timeout=0.2)
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
        """Wait until everything submitted is committed, then let go of the DuckDB file."""
        done = []
        while self._in_flight > len(done):
            self._raise_if_failed()
            try:
                done.append(self._done.get(timeout=0.2))
            except queue.Empty:
                continue
        self._in_flight -= len(done)
        self._writer.submit(_release).result()
        return done

    def close(self) -> None:
        """Stop both stages. After an error, batches not committed are dropped: DuckDB's offsets do not cover
        them, so the next run consumes them again (the stages are killed: one may wait for the other)."""
        failed = self._error is not None or not self._thread.is_alive()
        if not failed:
            self._pending.put(None)
            self._thread.join()
            self._writer.submit(_release).result()
        for pool, pid in ((self._transformer, self._transformer_pid), (self._writer, self._writer_pid)):
            if failed:
                try:
                    os.kill(pid.result(), signal.SIGKILL)
                except Exception:  # already gone, or never started
                    pass
            pool.shutdown(wait=not failed, cancel_futures=True)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError("live ingestion pipeline failed") from self._error

    def _collect_loop(self) -> None:
        try:
            while (item := self._pending.get()) is not None:
                transformed, committed, consumed = item
                skipped = transformed.result()
                inserted, quarantined, next_offsets, last_record, committed_at = committed.result()
                self._done.put(Written(consumed, inserted, skipped, quarantined, next_offsets, last_record,
                                       committed_at))
        except BaseException as exc:  # surfaced to the consumer thread by submit/results/finish
            self._error = exc
