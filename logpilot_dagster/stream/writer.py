"""The worker's pipeline behind the consumer: one stage process that transforms batches and writes them to DuckDB.

Screening and the shared ``LineTransformer`` run on the stage's task thread (one, so the miner sees batches in
order); the DuckDB transactions run on a thread of the same process, strictly in submission order, one
transaction per batch, while the next batch is transformed (Arrow, RE2 and DuckDB release the GIL for their
work). Transformed batches go to the write thread through an in-process queue, so they are never pickled or
copied between processes; the consumer process (the busiest) only sends the records and sees small outcomes.
At most ``QUEUED`` batches are in flight, which bounds memory and lets a slow warehouse hold the consumer back.
The write thread keeps its DuckDB connection while batches keep coming (``HeldConnection``) and lets go when
idle or when another process waits for it.

The stage ignores SIGINT/SIGTERM (the consumer decides when to stop) and, on Linux, dies with its parent:
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
from typing import TYPE_CHECKING

import pyarrow as pa

from logpilot_dagster.settings import LogPilotPaths

if TYPE_CHECKING:  # the stage imports its modules in its own process: the consumer skips them
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


_builder: BatchBuilder | None = None  # in the stage process
_held: HeldConnection | None = None  # in the stage process, used by its write thread
_to_write: queue.Queue | None = None  # in the stage process: transformed batches for the write thread
_outcomes = None  # the queue of commit outcomes, stage -> consumer


def _start_child(parent_pid: int, outcomes, paths: LogPilotPaths) -> None:
    """Initialise the stage process: its registry, its held DuckDB connection and its write thread."""
    global _builder, _held, _to_write, _outcomes
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)
    from logpilot_dagster.stream.batches import BatchBuilder
    from logpilot_dagster.storage.warehouse import HeldConnection

    # Arrow's default pool (mimalloc) hands the freed pages of each batch's columns back to the kernel and
    # faults them in again for the next: glibc's malloc keeps them (a third less system time in this process).
    pa.set_memory_pool(pa.system_memory_pool())
    _outcomes = outcomes
    _builder = BatchBuilder(paths)
    _held = HeldConnection(paths.db_path)
    _to_write = queue.Queue()
    threading.Thread(target=_write_loop, name="logpilot-batch-writer", daemon=True).start()


def _transform(records: pa.Table, topic: str, t1_us: int | None, now_ms: int) -> None:
    """In the stage process: screen and transform one batch and queue it for the write thread."""
    from logpilot_dagster.stream.records import screen

    _builder.refresh()
    screened = screen(records, topic, t1_us, now_ms)
    batch, late = _builder.build(topic, screened, t1_us, now_ms)
    _to_write.put((batch, records.num_rows, screened.skipped_before_t1 + late))


def _write_loop() -> None:
    """The stage's write thread: one transaction per transformed batch, in order; each outcome (a ``Written``,
    or the exception that stopped the thread) goes to the consumer."""
    from logpilot_dagster.discovery.samples import publish_queue_counts
    from logpilot_dagster.stream.sink import write_batch

    try:
        while True:
            batch, consumed, skipped = _to_write.get()
            with _held.use() as con:
                inserted = write_batch(con, batch)
                if batch.discovery.num_rows:  # lock-free counts for the sensor that starts discovery
                    publish_queue_counts(con, _held.db_path.parent / "state")
            _outcomes.put(Written(consumed, inserted, skipped, batch.quarantine.num_rows, batch.next_offsets,
                                  batch.last_record, time.time()))
    except BaseException as exc:
        _outcomes.put(RuntimeError(f"the write thread failed: {exc!r}"))


def _release() -> None:
    """In the stage process, with no batch in flight: close the held connection."""
    _held.close()


class BatchWriter:
    """Submit consumed records; collect ``Written`` outcomes in order."""

    def __init__(self, paths: LogPilotPaths, topic: str, t1_us: int | None) -> None:
        self.topic = topic
        self.t1_us = t1_us
        self._outcomes = _SPAWN.Queue()
        # one process, started now (while the consumer connects), not with the first batch
        self._stage = ProcessPoolExecutor(1, mp_context=_SPAWN, initializer=_start_child,
                                          initargs=(os.getpid(), self._outcomes, paths))
        self._stage_pid = self._stage.submit(os.getpid)
        self._pending: queue.Queue[Future | None] = queue.Queue(maxsize=QUEUED)
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
        transformed = self._stage.submit(_transform, records, self.topic, self.t1_us, now_ms)
        self._in_flight += 1
        while True:
            self._raise_if_failed()
            try:
                self._pending.put(transformed, timeout=0.2)
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
        self._stage.submit(_release).result()
        return done

    def close(self) -> None:
        """Stop the stage. After an error, batches not committed are dropped: DuckDB's offsets do not cover
        them, so the next run consumes them again (the stage is killed: its write thread may be waiting)."""
        failed = self._error is not None or not self._thread.is_alive()
        if not failed:
            self._pending.put(None)
            self._thread.join()
            self._stage.submit(_release).result()
        if failed:
            try:
                os.kill(self._stage_pid.result(), signal.SIGKILL)
            except Exception:  # already gone, or never started
                pass
        self._stage.shutdown(wait=not failed, cancel_futures=True)
        self._outcomes.close()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError("live ingestion pipeline failed") from self._error

    def _outcome(self, transformed: Future) -> Written:
        """The commit outcome of the next batch, whose transform is ``transformed``: fails when the transform
        did, when the write thread did, or when the stage process died."""
        transformed.result()
        while True:
            try:
                outcome = self._outcomes.get(timeout=0.5)
            except queue.Empty:
                try:
                    os.kill(self._stage_pid.result(), 0)
                except ProcessLookupError:  # died (and was reaped) without a word
                    raise RuntimeError("the stage process died") from None
                continue
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome

    def _collect_loop(self) -> None:
        try:
            while (transformed := self._pending.get()) is not None:
                self._done.put(self._outcome(transformed))
        except BaseException as exc:  # surfaced to the consumer thread by submit/results/finish
            self._error = exc
