"""The ingestion worker: the raw topic -> DuckDB ``logs`` with an exactly-once effect.

Start position per partition: ``stream_offsets`` in DuckDB when present, else the group's committed offset,
else the earliest record. In group mode (``LiveSettings.group_mode``, ``logpilot ingest --group NAME``) the worker
is one member of a Kafka consumer group: its partitions come from the group's assignment and move to other
members when it joins, leaves or dies, and the position of a partition it is assigned is ``stream_offsets``
(else the earliest record), never the group's committed offset. Before giving partitions up it commits what it
consumed from them, so the next owner starts exactly after the last stored record. Each batch (up to ``batch_size`` records, half of what is left near the head, or
whatever arrived within ``max_latency_s`` or up to the head in real-time mode) is screened, transformed and
written in ONE DuckDB transaction together with the next offsets; the Kafka group commit follows and is only
informative. A SIGKILL at any point therefore loses nothing and duplicates nothing: a restart re-reads exactly
the records whose transaction did not commit.

Modes: ``catch-up`` while the lag exceeds one batch, ``real-time`` otherwise. The head of a partition is the
larger of the broker's end offset and the high watermark of the last fetch: tansu on S3 under-reports end offsets,
so "caught up" is decided by what fetches return. SIGTERM/SIGINT flush the pending batch and return.

When the broker goes away the worker commits what is in flight, waits, and resumes from DuckDB's offsets once it
is back, also when the embedded broker comes back on another port (``broker.json`` is read again). A memory
broker that restarted empty is read again from the start: at start-up and every report interval the worker
checks that a record it stored is still the broker's record at that offset; the offsets of its old log that were
never read are counted as lost (``IngestStats.lost_offsets``, logged per partition). Every report interval the
worker also writes its progress to ``state/live.json`` for readers that must not open DuckDB (the sensor).
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from logpilot_dagster.broker import Broker, BrokerUnavailable, connect_broker
from logpilot_dagster.broker.consumer import BrokerError, BrokerUnreachable, LogConsumer
from logpilot_dagster.stream import live_state
from logpilot_dagster.stream.client_noise import quiet_kafka_logs
from logpilot_dagster.stream.records import PendingRecords, fingerprint
from logpilot_dagster.stream.settings import LiveSettings
from logpilot_dagster.stream.sink import stored_offsets
from logpilot_dagster.stream.writer import BatchWriter, Written

CATCH_UP, REAL_TIME = "catch-up", "real-time"
REPORT_EVERY_S = 5.0
IDLE_POLL_S = 0.2
PENDING_POLL_S = 0.02
BROKER_TIMEOUT_S = 5.0
#: How long the broker may hold a fetch at the head: requests on the connection queue behind it (offset
#: lookups included), so it stays short.
FETCH_MAX_WAIT_MS = 100
#: How long ``until_caught_up`` runs wait for an unreachable broker before failing (others wait forever).
BROKER_GIVE_UP_S = 60.0
PARTIAL_IN_FLIGHT = 2
#: Near the head a batch goes out once it holds half of the records not yet handed on (at least this many):
#: batch sizes halve towards the end of a catch-up, so the last batch, which nothing overlaps, is small.
MIN_SPLIT = 5_000
#: The probe reads single records: a small fetch keeps it from decoding a whole partition's worth around one.
PROBE_FETCH_BYTES = 64 * 1024
#: Group mode: a member that stops heartbeating (SIGKILL, lost host) loses its partitions after this long.
GROUP_SESSION_TIMEOUT_MS = 10_000
GROUP_HEARTBEAT_MS = 2_000
#: A member that does not poll for this long (a batch waiting for a busy warehouse) leaves the group.
GROUP_MAX_POLL_INTERVAL_MS = 300_000
log = logging.getLogger("logpilot.stream")


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the objects that exist now out of the garbage collector's scans while the block runs.

    The consumer allocates a few objects per record, so full collections run often, and each one walks the
    whole heap (modules, clients, ...): about a fifth of the consumer's CPU at catch-up rates."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass
class IngestStats:
    """Totals of one run. ``lag``: records behind the head at the end; ``rate``: records consumed per second."""

    consumed: int = 0
    inserted: int = 0
    skipped_before_t1: int = 0
    quarantined: int = 0
    lag: int = 0
    mode: str = CATCH_UP
    rate: float = 0.0
    batches: int = 0
    elapsed_s: float = 0.0
    lost_offsets: int = 0  # offsets of a lost broker log (memory broker restarted) that were never read

    def summary(self) -> str:
        lost = f" lost_offsets={self.lost_offsets}" if self.lost_offsets else ""
        return (f"[{self.mode}] consumed={self.consumed} inserted={self.inserted} "
                f"skipped_before_t1={self.skipped_before_t1} quarantined={self.quarantined} lag={self.lag} "
                f"rate={self.rate:.0f}/s batches={self.batches}{lost}")

    def as_dict(self) -> dict:
        return asdict(self)


def _epoch_us(t1: datetime | None) -> int | None:
    """T1 in epoch microseconds, DuckDB's TIMESTAMP precision (a float would round the last digits)."""
    if t1 is None:
        return None
    if t1.tzinfo is None:  # DuckDB TIMESTAMPs are naive UTC
        t1 = t1.replace(tzinfo=timezone.utc)
    return (t1 - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)


class IngestionWorker:
    """Consumes the raw topic into DuckDB. ``broker`` defaults to ``connect_broker(settings.broker, ...)``, read
    again when the broker stops answering; ``report`` receives messages, ``progress`` the stats every report
    interval (default: ``report`` gets their summary line), ``on_commit`` every committed batch (``Written``),
    and ``should_stop`` is asked every report interval whether to stop as ``request_stop`` does."""

    def __init__(self, settings: LiveSettings, t1: datetime | None = None, broker: Broker | None = None,
                 report: Callable[[str], None] | None = None,
                 on_commit: Callable[[Written], None] | None = None,
                 progress: Callable[["IngestStats"], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> None:
        self.settings = settings
        self.t1_us = _epoch_us(t1)
        self._given_broker = broker
        self.broker = broker or connect_broker(settings.broker, settings.paths.state_dir)
        self.report = report or log.info
        self.progress = progress or (lambda stats: self.report(stats.summary()))
        self.should_stop = should_stop
        self.on_commit = on_commit
        self.group_mode = settings.group_mode
        # a group member has a state file of its own: other members may run on the same home
        self.state_file = live_state.state_file(settings.paths.state_dir,
                                                f"{settings.group_id}.{os.getpid()}" if self.group_mode else None)
        quiet_kafka_logs()
        self.topic = settings.broker.topic
        self.stats = IngestStats()
        self._stop = threading.Event()
        self._end_offsets: dict[int, int] = {}
        # Per partition, a stored record known to be in the broker's current log (offset, fingerprint), and
        # the newest committed one: checked and moved forward every report interval (see ``_reset_partitions``).
        self._landmarks: dict[int, tuple[int, str]] = {}
        self._newest: dict[int, tuple[int, str]] = {}
        self._probe: LogConsumer | None = None  # reads single records for those checks
        # group mode: the consumer, pending records and writer the rebalance callbacks hand over or resume
        self._group_parts: tuple[LogConsumer, PendingRecords, BatchWriter] | None = None
        self._owned: list[int] = []
        self._fresh: list[int] = []  # assigned, not yet positioned at their stored offsets
        # Per partition, the highest head seen in the broker's current log: what a lost log held.
        saved = live_state.read(self.state_file)
        self._heads: dict[int, int] = {int(p): h for p, h in saved.get("heads", {}).items()} \
            if saved.get("topic") == self.topic else {}

    def request_stop(self) -> None:
        """Finish the current poll, write what is pending and return from ``run`` (what SIGTERM does)."""
        self._stop.set()

    # -- start position ----------------------------------------------------------------------------------------
    def _assign(self, consumer: LogConsumer) -> list[int]:
        """Assign every partition of the topic; in group mode subscribe instead (the group assigns partitions in
        later polls, see ``_take_over``) and return none yet."""
        self.broker.ensure_topic()
        if self.group_mode:
            self._owned = []
            consumer.subscribe(on_assigned=self._take_over, on_revoked=self._hand_over)
            return []
        deadline = time.monotonic() + 30
        while not (partitions := consumer.partitions()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {self.topic!r} has no partitions")
            time.sleep(0.1)
        consumer.assign(partitions)
        return partitions

    def _resume(self, consumer: LogConsumer, tps: list[int]) -> None:
        """Seek every partition to DuckDB's next offset, else the group's committed offset, else the start.

        A broker that lost its log (a memory broker that restarted) hands out offsets from 0 again: it is read
        from the start when its log ends before the stored offset, or when the record before that offset is
        another record than the one stored (it took more new records than we had read before)."""
        if self.group_mode:
            tps = [tp for tp in tps if tp in consumer.assignment()]
        if not tps:
            return
        stored = stored_offsets(self.settings.paths.db_path, self.topic)
        ends = consumer.end_offsets(tps)
        for tp in tps:
            next_offset, last_record = stored.get(tp, (None, None))
            if next_offset is None and not self.group_mode:
                next_offset = consumer.committed(tp)
            if next_offset is None:
                consumer.seek(tp, None)
                continue
            before = self._record_before(tp, next_offset) if next_offset > 0 else None
            self._landmarks.pop(tp, None)
            if before is None and next_offset > ends[tp]:
                problem = f"the broker's log ends before the stored offset {next_offset}"
            elif before is not None and last_record is not None and before != last_record:
                problem = f"the record before the stored offset {next_offset} is not the one stored"
            else:
                consumer.seek(tp, next_offset)
                if before is not None:
                    self._landmarks[tp] = (next_offset - 1, before)
                continue
            self.report(f"partition {tp}: {problem} (broker restarted without its data?); "
                        "reading it from the start")
            self._count_lost(tp, next_offset)
            consumer.seek(tp, None)

    def _count_lost(self, partition: int, next_offset: int) -> None:
        """The old log of ``partition`` is gone: the offsets between our stored position and its last known head
        were never read, and never will be."""
        lost = max(0, self._heads.pop(partition, next_offset) - next_offset)
        if lost:
            self.stats.lost_offsets += lost
            log.warning("partition %s: %d offsets (%d..%d) of the broker's previous log could not be read",
                        partition, lost, next_offset, next_offset + lost - 1)
            self.report(f"partition {partition}: {lost} offsets ({next_offset}..{next_offset + lost - 1}) of the "
                        "broker's previous log could not be read: they were lost with it")

    def _probe_consumer(self) -> LogConsumer:
        if self._probe is None:
            self._probe = self.broker.log_consumer(self.topic, self.settings.broker.client,
                                                   max_partition_fetch_bytes=PROBE_FETCH_BYTES,
                                                   fetch_max_bytes=PROBE_FETCH_BYTES,
                                                   fetch_max_wait_ms=FETCH_MAX_WAIT_MS)
        return self._probe

    def _fetched_heads(self, tps: list[int], ends: dict[int, int]) -> dict[int, int]:
        """Each partition's head as a fetch from its reported end offset sees it: a fetch response carries the
        real high watermark, where tansu on S3 under-reports end offsets."""
        probe = self._probe_consumer()
        probe.assign(tps)
        for tp in tps:
            probe.seek(tp, ends[tp])
        seen: dict[int, int] = {}
        deadline = time.monotonic() + BROKER_TIMEOUT_S
        while len(seen) < len(tps) and time.monotonic() < deadline:
            probe.poll(0.2, max_records=1)
            seen = {tp: head for tp in tps if (head := probe.highwater(tp)) is not None}
        return {tp: max(ends[tp], seen.get(tp, 0)) for tp in tps}

    def _record_before(self, tp: int, next_offset: int) -> str | None:
        """The ``fingerprint`` of the record at ``next_offset - 1``, None when the log has no such record (some
        brokers under-report the end offset, so this asks for the record itself)."""
        probe = self._probe_consumer()
        probe.assign([tp])
        probe.seek(tp, next_offset - 1)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if (records := probe.poll(0.5, max_records=1)).num_rows:
                [record] = records.slice(0, 1).to_pylist()
                return fingerprint(record["timestamp"], record["value"]) if record["offset"] == next_offset - 1 \
                    else None
        return None

    def _reset_partitions(self, consumer: LogConsumer, tps: list[int]) -> list[int]:
        """Partitions whose log the broker lost while we ran: it no longer reaches our position, or a landmark
        record is not the one we stored (a new log that already grew past it). Landmarks that still hold move
        on to the newest committed record."""
        try:
            ends = consumer.end_offsets(tps)
        except BrokerError:
            return []
        reset = []
        for tp in tps:
            landmark = self._landmarks.get(tp)
            head = max(ends[tp], consumer.highwater(tp) or 0)
            if consumer.position(tp) > head and self._record_before(tp, consumer.position(tp)) is None:
                reset.append(tp)
            elif landmark is not None and self._record_before(tp, landmark[0] + 1) not in (None, landmark[1]):
                reset.append(tp)
            elif tp in self._newest:
                self._landmarks[tp] = self._newest[tp]
        return reset

    def _recover(self, consumer: LogConsumer, tps: list[int], writer: BatchWriter,
                 problem: str, give_up_s: float | None, reset: list[int] = ()) -> None:
        """Commit the batches in flight, wait for the broker, resume from DuckDB's offsets (``reset``
        partitions from the start: their stored offsets may already point into the broker's new log; what is
        read again is skipped by the primary key)."""
        self.report(f"{problem}: committing the batches in flight, then resuming from the stored offsets")
        self._collect(writer.finish(), consumer)
        self._end_offsets = {}  # the broker's log may be another one now
        deadline = None if give_up_s is None else time.monotonic() + give_up_s
        if reset:
            stored = stored_offsets(self.settings.paths.db_path, self.topic)
            for tp in reset:
                self._count_lost(tp, stored.get(tp, (0, None))[0])
        while not self._stop.is_set():
            try:
                self._resume(consumer, tps)
                for tp in reset:
                    consumer.seek(tp, None)
                    self._landmarks.pop(tp, None)
                self.report("broker reachable again; resumed from the stored offsets")
                return
            except BrokerUnreachable:
                if deadline is not None and time.monotonic() > deadline:
                    raise
                self._stop.wait(1.0)

    # -- group mode --------------------------------------------------------------------------------------------
    def _hand_over(self, revoked: list[int]) -> None:
        """Partitions are leaving this member: commit every record consumed so far (their offsets with them).
        Runs on kafka-python's IO thread, inside the rebalance: it waits for the write pipeline only, never for
        the broker."""
        if self._group_parts is None:
            return
        _, pending, writer = self._group_parts
        if pending:
            writer.submit(pending.take(), int(time.time() * 1000))
        if writer.in_flight:
            self._collect(writer.finish(), None)  # no group commit from the IO thread; the warehouse has them
        for partition in revoked:
            self._landmarks.pop(partition, None)
            self._newest.pop(partition, None)
        self._owned = []
        if revoked:
            self.report(f"handing over partitions {sorted(revoked)}: committed")

    def _take_over(self, assigned: list[int]) -> None:
        """The group assigned these partitions (on the IO thread, which must not wait for the broker): note them;
        ``_position_fresh`` seeks them once the poll returns."""
        self._owned = sorted(assigned)
        self._fresh = list(assigned)
        self._end_offsets = {}
        self.report(f"assigned partitions {self._owned} of {self.topic}")

    def _position_fresh(self, consumer: LogConsumer, polled: pa.Table) -> pa.Table:
        """After a poll that brought an assignment: drop what it fetched from the new partitions (read from the
        group's position) and start each after its last stored record instead."""
        if not self._fresh:
            return polled
        fresh, self._fresh = self._fresh, []
        self._resume(consumer, fresh)
        return polled.filter(pc.invert(pc.is_in(polled.column("partition"), pa.array(fresh, pa.int32()))))

    # -- lag ---------------------------------------------------------------------------------------------------
    def _lag(self, consumer: LogConsumer, tps: list[int], exact: bool = False) -> int:
        """Records behind the head: from fetch responses' high watermarks, with an offsets request if ``exact``
        and a fetch from there if ``exact`` (-1 when the broker does not answer in time): tansu under-reports end
        offsets, so an end offset never lowers the head a fetch reported."""
        if exact or len(self._end_offsets) < len(tps):
            try:
                self._end_offsets = consumer.end_offsets(tps)
                if exact:
                    self._end_offsets = self._fetched_heads(tps, self._end_offsets)
            except BrokerError as exc:
                self.report(f"no end offsets from the broker: {exc}")
                return -1
        lag = 0
        for tp in tps:
            fetched = consumer.highwater(tp)
            head = max(self._end_offsets[tp], fetched or 0) if exact or fetched is None else fetched
            self._heads[tp] = max(self._heads.get(tp, 0), head)
            lag += max(0, head - consumer.position(tp))
        return lag

    # -- the loop ----------------------------------------------------------------------------------------------
    def run(self, until_caught_up: bool = False, max_seconds: float | None = None) -> IngestStats:
        with frozen_heap():
            return self._run(until_caught_up, max_seconds)

    def _consumer(self) -> LogConsumer:
        settings = self.settings
        group = {"session_timeout_ms": GROUP_SESSION_TIMEOUT_MS, "heartbeat_interval_ms": GROUP_HEARTBEAT_MS,
                 "max_poll_interval_ms": GROUP_MAX_POLL_INTERVAL_MS} if self.group_mode else {}
        return self.broker.log_consumer(self.topic, settings.broker.client, group_id=settings.group_id,
                                        max_poll_records=settings.batch_size, **group,
                                        fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=16 * 1024 * 1024,
                                        fetch_max_wait_ms=FETCH_MAX_WAIT_MS)

    def _moved(self) -> Broker | None:
        """The embedded broker, when it now answers on another address than the one we consume from (it was
        restarted on another port): the broker we were given, or the one ``broker.json`` announces."""
        if self._given_broker is not None:
            broker = self._given_broker
        elif self.settings.broker.bootstrap_servers:
            return None  # a configured cluster does not move
        else:
            try:
                broker = connect_broker(self.settings.broker, self.settings.paths.state_dir)
            except BrokerUnavailable:
                return None
        return broker if broker.bootstrap_servers != self._bootstrap else None

    def _reconnect(self, consumer: LogConsumer, writer: BatchWriter, broker: Broker,
                   give_up_s: float | None) -> tuple[LogConsumer, list[int]]:
        """Commit what is in flight, then consume from ``broker`` at the stored offsets."""
        self.report(f"the broker moved from {self._bootstrap} to {broker.bootstrap_servers}: reconnecting")
        self._collect(writer.finish(), None)
        consumer.close()
        if self._probe is not None:
            self._probe.close()
            self._probe = None
        self.broker, self._bootstrap = broker, broker.bootstrap_servers
        consumer = self._consumer()
        tps = self._assign(consumer)
        self._recover(consumer, tps, writer, f"connected to {broker.bootstrap_servers}", give_up_s)
        return consumer, tps

    def _check_predecessor(self) -> None:
        """One line when the previous worker on this home ended without a clean stop (SIGKILL, power loss)."""
        if self.group_mode:  # a member's state file is its own
            return
        state = live_state.read(self.state_file)
        pid = state.get("pid")
        if state.get("running") and pid and pid != os.getpid() and not _alive(pid):
            self.report(f"the previous worker (pid {pid}) did not stop cleanly; its uncommitted records are read "
                        "again from the stored offsets (a 'leaked semaphore' note from Python at that time was "
                        "its stage queues being cleaned up)")

    def _save_state(self, running: bool) -> None:
        live_state.write(self.state_file, topic=self.topic, bootstrap_servers=self._bootstrap, running=running,
                         heads=self._heads, **self.stats.as_dict())

    def _run(self, until_caught_up: bool, max_seconds: float | None) -> IngestStats:
        settings = self.settings
        self._bootstrap = self.broker.bootstrap_servers
        self._check_predecessor()
        consumer = self._consumer()
        writer = None
        previous = self._install_signal_handlers()
        start = last_report = time.monotonic()
        give_up_s = BROKER_GIVE_UP_S if until_caught_up else None
        pending = PendingRecords()
        pending_since = 0.0
        try:
            writer = BatchWriter(settings.paths, self.topic, self.t1_us)
            self._group_parts = (consumer, pending, writer)
            tps = self._assign(consumer)
            self._resume(consumer, tps)
            members = f"group {settings.group_id}" if self.group_mode else f"{len(tps)} partitions"
            self.report(f"ingesting {self.topic} ({members}) from {self.broker.bootstrap_servers} "
                        f"with {settings.broker.client}, "
                        f"T1={self.t1_us and datetime(1970, 1, 1) + timedelta(microseconds=self.t1_us)}")
            lag = self._lag(consumer, tps)
            while not self._stop.is_set():
                now = time.monotonic()
                if max_seconds is not None and now - start >= max_seconds:
                    break
                wait = PENDING_POLL_S if pending or writer.in_flight else IDLE_POLL_S
                target = self._target(len(pending), lag)
                try:
                    polled = consumer.poll(wait, max_records=max(1, target - len(pending)))
                except BrokerUnreachable as exc:
                    pending.clear()  # not committed: the resume reads these records again
                    if (moved := self._moved()) is not None:
                        consumer, tps = self._reconnect(consumer, writer, moved, give_up_s)
                        self._group_parts = (consumer, pending, writer)
                    else:
                        self._recover(consumer, tps, writer, f"broker unreachable ({exc})", give_up_s)
                    continue
                if self.group_mode:
                    polled = self._position_fresh(consumer, polled)
                    tps = self._owned  # the group's current assignment (the callbacks ran inside poll)
                got = polled.num_rows
                if got:
                    pending.add(polled)
                if got and len(pending) == got:
                    pending_since = time.monotonic()
                self._collect(writer.results(), consumer)
                lag = self._lag(consumer, tps)
                self._set_mode(CATCH_UP if lag > settings.batch_size else REAL_TIME)
                due = time.monotonic() - pending_since >= settings.max_latency_s
                # A partial batch goes out once the head is reached or it is due, but only while the pipeline
                # has room: under load, records keep gathering into fewer, larger transactions.
                if pending and (len(pending) >= self._target(len(pending), lag)
                                or (writer.in_flight < PARTIAL_IN_FLIGHT and (lag == 0 or due))):
                    writer.submit(pending.take(), int(time.time() * 1000))
                if (until_caught_up and not got and not pending and writer.in_flight == 0
                        and (tps or not self.group_mode) and self._lag(consumer, tps, exact=True) == 0):
                    break
                if time.monotonic() - last_report >= REPORT_EVERY_S:
                    last_report = time.monotonic()
                    self._update(start, lag)
                    self.progress(self.stats)
                    self._save_state(running=True)
                    if self.should_stop is not None and self.should_stop():
                        self.request_stop()
                    if (moved := self._moved()) is not None:
                        pending.clear()
                        consumer, tps = self._reconnect(consumer, writer, moved, give_up_s)
                        self._group_parts = (consumer, pending, writer)
                    elif reset := self._reset_partitions(consumer, tps):
                        pending.clear()
                        self._recover(consumer, tps, writer, f"the broker lost its log (partitions {sorted(reset)})",
                                      give_up_s, reset)
            if pending:
                writer.submit(pending.take(), int(time.time() * 1000))
            self._collect(writer.finish(), consumer)
            self._update(start, self._lag(consumer, tps, exact=True))
            self._save_state(running=False)
            self.report(("stopped: " if self._stop.is_set() else "done: ") + self.stats.summary())
            return self.stats
        finally:
            self._group_parts = None  # leaving the group (close) revokes nothing more to hand over
            if self.group_mode:
                self.state_file.unlink(missing_ok=True)
            if writer is not None:
                writer.close()
            self._restore_signal_handlers(previous)
            consumer.close()
            if self._probe is not None:
                self._probe.close()
                self._probe = None

    def _target(self, pending: int, lag: int) -> int:
        """The size of the next batch: ``batch_size``, or near the head half of the records not yet handed on."""
        return min(self.settings.batch_size, max((pending + lag + 1) // 2, MIN_SPLIT))

    def _set_mode(self, mode: str) -> None:
        if mode != self.stats.mode:
            self.report(f"mode: {self.stats.mode} -> {mode}")
            self.stats.mode = mode

    def _update(self, start: float, lag: int) -> None:
        self.stats.elapsed_s = time.monotonic() - start
        self.stats.rate = self.stats.consumed / self.stats.elapsed_s if self.stats.elapsed_s else 0.0
        self.stats.lag = lag

    def _collect(self, written: list[Written], consumer: LogConsumer | None) -> None:
        """Count committed batches and mirror their offsets to the consumer group (informative only; not with
        ``consumer=None``)."""
        if not written:
            return
        offsets: dict[int, int] = {}
        s = self.stats
        for w in written:
            if self.on_commit is not None:
                self.on_commit(w)
            s.consumed += w.consumed
            s.inserted += w.inserted
            s.skipped_before_t1 += w.skipped_before_t1
            s.quarantined += w.quarantined
            s.batches += 1
            offsets.update(w.next_offsets)
            for partition, fp in w.last_record.items():
                self._newest[partition] = (w.next_offsets[partition] - 1, fp)
                self._landmarks.setdefault(partition, self._newest[partition])
        if consumer is None:
            return
        try:
            consumer.commit(offsets)
        except BrokerError as exc:  # DuckDB holds the truth; the group offset only helps other tools
            self.report(f"group offset commit failed (harmless): {exc}")

    def _install_signal_handlers(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda signum, frame: self.request_stop())
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True


def run_ingestion(settings: LiveSettings, until_caught_up: bool = False, max_seconds: float | None = None,
                  t1: datetime | None = None, broker: Broker | None = None,
                  report: Callable[[str], None] | None = None,
                  progress: Callable[[IngestStats], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> IngestStats:
    """Run the worker once (the Dagster job ``live_ingestion`` calls this with ``context.log.info`` as report)."""
    return IngestionWorker(settings, t1, broker, report, progress=progress, should_stop=should_stop).run(
        until_caught_up=until_caught_up, max_seconds=max_seconds)
