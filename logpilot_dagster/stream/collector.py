"""``logpilot collect``: tail log files (and/or stdin) into the raw topic.

Each file is followed across rotation (the path now names another inode: the old file is read to its end, also
when the rotation happened while the collector was down and the old file sits next to it under a new name)
and truncation (same inode, size below our position: start again from 0). Positions are saved in a JSON state
file after the broker acknowledged the lines, so a restart resumes where it left off; delivery is at least once.

Other shippers can feed the same topic instead; all the worker needs is key = source name (as declared in
``sources.yaml``) and value = one raw line. Vector::

    [sinks.logpilot]
    type = "kafka"
    inputs = ["payments_files"]
    bootstrap_servers = "127.0.0.1:9092"
    topic = "logpilot.raw"
    key_field = "source_name"          # set with a remap transform: .source_name = "payments-api"
    encoding.codec = "text"            # the raw line as the value

Fluent Bit::

    [OUTPUT]
        Name         kafka
        Match        payments.*
        Brokers      127.0.0.1:9092
        Topics       logpilot.raw
        Message_Key  payments-api
        Format       raw
        Raw_Log_Key  log

Their record timestamp is the read time rather than the line's time; the worker takes the event time it parses
from the line, so lines at or before T1 are still recognised.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from logpilot_dagster.stream.producer import LineProducer, read_line_chunks

READ_BYTES = 4 * 1024 * 1024


@dataclass
class Position:
    inode: int
    offset: int


class FileTailer:
    """Follows one path; ``read`` returns complete lines written since the last call (about 4 MiB at most)."""

    def __init__(self, path: Path, position: Position | None = None) -> None:
        self.path = path
        self.position = position  # of the file the path named when we opened it
        self._fh: BinaryIO | None = None
        self._old: BinaryIO | None = None  # a rotated-away file, still to be read to its end

    def _open_current(self) -> None:
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            return
        st = os.fstat(fh.fileno())
        pos = self.position
        if pos is not None and pos.inode == st.st_ino and pos.offset <= st.st_size:
            start = pos.offset
        else:
            if pos is not None and pos.inode != st.st_ino and self._old is None:
                self._old = self._find_rotated(pos)
            start = 0
        fh.seek(start)
        self._fh, self.position = fh, Position(st.st_ino, start)

    def _find_rotated(self, pos: Position) -> BinaryIO | None:
        """The file that had our inode before a rotation while we were not running (e.g. ``app.log.1``)."""
        for sibling in self.path.parent.iterdir():
            try:
                if sibling.is_file() and sibling.stat().st_ino == pos.inode:
                    fh = open(sibling, "rb")
                    fh.seek(min(pos.offset, os.fstat(fh.fileno()).st_size))
                    return fh
            except OSError:
                continue
        return None

    def read(self) -> list[bytes]:
        if self._fh is None:
            self._open_current()
        if self._old is not None:  # finish the previous file first, its last unterminated line included
            lines, eof = _read_chunk(self._old, final=True)
            if eof:
                self._old.close()
                self._old = None
            return lines
        if self._fh is None:
            return []
        size = os.fstat(self._fh.fileno()).st_size
        if size < self.position.offset:  # truncated in place (copytruncate): start again
            self._fh.seek(0)
        lines, eof = _read_chunk(self._fh, final=False)
        self.position.offset = self._fh.tell()
        if eof and self._rotated():
            self._old, self._fh, self.position = self._fh, None, None
        return lines

    def _rotated(self) -> bool:
        try:
            return os.stat(self.path).st_ino != self.position.inode
        except FileNotFoundError:
            return True

    def close(self) -> None:
        for fh in (self._fh, self._old):
            if fh is not None:
                fh.close()
        self._fh = self._old = None


def _read_chunk(fh: BinaryIO, final: bool) -> tuple[list[bytes], bool]:
    """Complete lines from the next chunk of ``fh`` (with ``final``, an unterminated last line too) and whether
    the end of the file was reached. A line longer than the chunk is cut (the worker quarantines it as oversize)."""
    start = fh.tell()
    data = fh.read(READ_BYTES)
    eof = len(data) < READ_BYTES
    cut = len(data) if final and eof else data.rfind(b"\n") + 1
    if cut == 0 and not eof:
        cut = len(data)
    fh.seek(start + cut)
    return [line.rstrip(b"\r") for line in data[:cut].split(b"\n") if line], eof


class Collector:
    """Tails ``files`` (source name -> path) and optionally stdin (``stdin_source``) into ``producer``."""

    def __init__(self, producer: LineProducer, files: dict[str, Path], state_file: Path,
                 stdin: BinaryIO | None = None, stdin_source: str = "stdin") -> None:
        self.producer = producer
        self.state_file = state_file
        saved = self._load_state()
        self.tailers = {name: FileTailer(Path(path), saved.get(str(Path(path).resolve())))
                        for name, path in files.items()}
        self.stdin_source = stdin_source
        self._stdin_lines: queue.Queue = queue.Queue()
        self._stdin_done = threading.Event()
        if stdin is not None:
            threading.Thread(target=self._read_stdin, args=(stdin,), daemon=True).start()
        else:
            self._stdin_done.set()
        self.sent = 0

    def _load_state(self) -> dict[str, Position]:
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return {path: Position(**pos) for path, pos in data.get("files", {}).items()}

    def _save_state(self) -> None:
        data = {"files": {str(t.path.resolve()): vars(t.position) for t in self.tailers.values()
                          if t.position is not None}}
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.state_file)

    def _read_stdin(self, stream: BinaryIO) -> None:
        for chunk in read_line_chunks(stream, chunk_lines=1):
            self._stdin_lines.put(chunk[0])
        self._stdin_done.set()

    @property
    def stdin_finished(self) -> bool:
        return self._stdin_done.is_set() and self._stdin_lines.empty()

    def poll_once(self) -> int:
        """Send what is new, wait for the broker's acknowledgement, then save positions; returns lines sent."""
        sent = 0
        for name, tailer in self.tailers.items():
            sent += self.producer.send(name, tailer.read())
        stdin_lines = []
        while not self._stdin_lines.empty():
            stdin_lines.append(self._stdin_lines.get_nowait())
        sent += self.producer.send(self.stdin_source, stdin_lines)
        self.producer.flush()
        self._save_state()
        self.sent += sent
        return sent

    def run(self, stop: threading.Event, interval_s: float = 0.2) -> int:
        """Poll until ``stop`` is set (or stdin ends when there are no files); returns lines sent."""
        while not stop.is_set():
            busy = self.poll_once()
            if not self.tailers and self.stdin_finished:
                break
            if not busy:
                stop.wait(interval_s)
        self.poll_once()
        return self.sent

    def close(self) -> None:
        for tailer in self.tailers.values():
            tailer.close()
