"""Reading landing files into batches of decoded lines with byte offsets; bad input is quarantined, not dropped.

Offsets are byte offsets of each line's start in the (decompressed) stream, so ``source + offset`` names a line
for ever (a leading UTF-8 BOM is skipped but counted: the first line then starts at 3). Reasons: ``empty_file``,
``blank_line``, ``undecodable_utf8``, ``line_too_long``, ``truncated_gzip``, ``bad_gzip``.

Memory is bounded by bytes, whatever the input: gzip is inflated at most ``chunk_bytes`` at a time, a line over
``MAX_LINE_BYTES`` is skipped as it streams (only its first bytes are kept), a run of blank lines is one
quarantine record (``[N blank lines]``, ``Quarantined.lines = N``), and a batch is cut at ``batch_lines``
records (good or quarantined) or ``batch_bytes`` bytes, whichever comes first (at most one chunk past either).
"""

from __future__ import annotations

import zlib
from itertools import accumulate, islice
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

MAX_LINE_BYTES = 64 * 1024
QUARANTINE_RAW_CHARS = 2048
CHUNK_BYTES = 1024 * 1024
BATCH_BYTES = 32 * 1024 * 1024
BOM = b"\xef\xbb\xbf"


@dataclass
class Quarantined:
    source: str
    source_offset: int
    raw: str
    reason: str
    lines: int = 1  # physical lines this record stands for (> 1 only for a run of blank lines)


@dataclass
class LineBatch:
    """Good lines of one source: text and the byte offset of each line, plus the quarantined records among them."""

    source: str
    offsets: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def records(self) -> int:
        """Good lines + quarantine records: what line accounting counts."""
        return len(self.lines) + len(self.quarantined)


def _preview(data: bytes, total: int | None = None) -> str:
    """The first bytes of a bad line as text (NULs escaped), with its size when cut."""
    total = len(data) if total is None else total
    text = data[:QUARANTINE_RAW_CHARS].decode("utf-8", "replace").replace("\x00", "\\x00")
    text = text[:QUARANTINE_RAW_CHARS]
    return text if total <= QUARANTINE_RAW_CHARS else f"{text}...[{total} bytes]"


class GzipError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _chunks(stream: BinaryIO, gz: bool, chunk_bytes: int) -> Iterator[bytes]:
    """Decompressed chunks of at most ``chunk_bytes``; a gzip stream that is cut short yields what it had, then
    raises ``GzipError``."""
    if not gz:
        while chunk := stream.read(chunk_bytes):
            yield chunk
        return
    inflater = zlib.decompressobj(wbits=31)
    produced = fed = False
    while compressed := stream.read(max(chunk_bytes // 4, 4096)):
        fed = True
        while True:
            try:
                out = inflater.decompress(compressed, chunk_bytes)
            except zlib.error as exc:
                raise GzipError("truncated_gzip" if produced else "bad_gzip") from exc
            if out:
                produced = True
                yield out
            if inflater.eof:
                compressed = inflater.unused_data
                inflater = zlib.decompressobj(wbits=31)  # next member of a multi-member file
                fed = bool(compressed)
                if not compressed:
                    break
            else:
                compressed = inflater.unconsumed_tail
                if not compressed and len(out) < chunk_bytes:
                    break  # needs more input
    if fed and not inflater.eof:
        raise GzipError("truncated_gzip" if produced else "bad_gzip")


class _Splitter:
    """Cuts a byte stream into lines at ``\\n`` and fills batches; holds at most one unfinished line of
    ``MAX_LINE_BYTES`` (longer ones are skipped as they stream, keeping their first bytes)."""

    def __init__(self, source: str, batch_lines: int, batch_bytes: int):
        self.source, self.batch_lines, self.batch_bytes = source, batch_lines, batch_bytes
        self.batch = LineBatch(source)
        self.held = 0  # bytes of text the batch holds
        self.records = 0  # records of the whole stream so far
        self.base = 0  # stream offset of ``pending``
        self.pending = b""
        self.bom_checked = False
        self.long: tuple[int, bytes] | None = None  # offset and first bytes of a line over the cap
        self.long_bytes = 0
        self.run: Quarantined | None = None  # the batch's last record, when it is a run of blank lines

    def feed(self, chunk: bytes) -> Iterator[LineBatch]:
        if not self.bom_checked:
            chunk, self.pending = self.pending + chunk, b""
            if len(chunk) < len(BOM) and BOM.startswith(chunk):
                self.pending = chunk
                return
            self.bom_checked = True
            if chunk.startswith(BOM):
                chunk, self.base = chunk[len(BOM):], len(BOM)
        if self.long is not None:
            nl = chunk.find(b"\n")
            if nl < 0:
                self.long_bytes += len(chunk)
                return
            self._end_long(nl)
            chunk = chunk[nl + 1:]
        data = self.pending + chunk if self.pending else chunk
        cut = data.rfind(b"\n") + 1
        if cut:
            self._lines(data[:cut] if cut < len(data) else data)
        tail = data[cut:] if cut else data
        if len(tail) > MAX_LINE_BYTES + 1:  # + a possible "\r" before the "\n"
            self.long, self.long_bytes, self.pending = (self.base, tail[:QUARANTINE_RAW_CHARS]), len(tail), b""
        else:
            self.pending = tail
        if self.batch.records >= self.batch_lines or self.held >= self.batch_bytes:
            yield self._take()

    def finish(self, error: str | None = None) -> Iterator[LineBatch]:
        """Flush the last line; ``error`` (a gzip reason) quarantines the unfinished line with that reason."""
        if error is not None:
            offset, head = self.long if self.long is not None else (self.base, self.pending)
            self._quarantine(offset, _preview(head, self.long_bytes if self.long else None), error)
        elif self.long is not None:
            self._end_long(0)
        elif self.pending:
            self._lines(self.pending + b"\n")
        if not self.records:
            self._quarantine(0, "", "empty_file")
        if self.batch.records:
            yield self._take()

    def _take(self) -> LineBatch:
        batch, self.batch, self.held, self.run = self.batch, LineBatch(self.source), 0, None
        return batch

    def _quarantine(self, offset: int, raw: str, reason: str) -> None:
        self.batch.quarantined.append(Quarantined(self.source, offset, raw, reason))
        self.held += len(raw)
        self.records += 1
        self.run = None

    def _end_long(self, rest: int) -> None:
        offset, head = self.long
        total = self.long_bytes + rest
        self._quarantine(offset, _preview(head, total), "line_too_long")
        self.long, self.long_bytes, self.base = None, 0, offset + total + 1

    def _blank(self, offset: int, n: int, raw: bytes) -> None:
        if self.run is not None:
            self.run.lines += n
            self.run.raw = f"[{self.run.lines} blank lines]"
            return
        self._quarantine(offset, _preview(raw) if n == 1 else f"[{n} blank lines]", "blank_line")
        self.run = self.batch.quarantined[-1]
        self.run.lines = n

    def _lines(self, data: bytes) -> None:
        """Add the lines of ``data`` (which ends with ``\\n``) starting at ``self.base``."""
        batch, base = self.batch, self.base
        self.base += len(data)
        if data.isascii() and b"\r" not in data and b"\n\n" not in data and not data.startswith(b"\n"):
            parts = data.decode("ascii").split("\n")
            parts.pop()
            if max(map(len, parts)) <= MAX_LINE_BYTES and not any(map(str.isspace, parts)):
                starts = accumulate(map((1).__add__, map(len, parts)), initial=base)  # each line's start, C loops
                batch.offsets.extend(islice(starts, len(parts)))
                batch.lines.extend(parts)
                self.held += len(data)
                self.records += len(parts)
                self.run = None
                return
        if not data.strip():
            self._blank(base, data.count(b"\n"), data[:-1])
            return
        offset = base
        for raw in data[:-1].split(b"\n"):
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line.strip():
                self._blank(offset, 1, line)
            elif len(line) > MAX_LINE_BYTES:
                self._quarantine(offset, _preview(line), "line_too_long")
            else:
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError:
                    self._quarantine(offset, _preview(line), "undecodable_utf8")
                else:
                    batch.lines.append(text)
                    batch.offsets.append(offset)
                    self.held += len(line)
                    self.records += 1
                    self.run = None
            offset += len(raw) + 1


def read_lines(stream: BinaryIO, source: str, gz: bool = False, batch_lines: int = 200_000,
               chunk_bytes: int = CHUNK_BYTES, batch_bytes: int = BATCH_BYTES,
               limit: int | None = None) -> Iterator[LineBatch]:
    """Yield batches of about ``batch_lines`` records (good lines and quarantined ones) or ``batch_bytes``;
    ``limit`` stops after about that many (decompressed) bytes, for sampling a file's head."""
    splitter = _Splitter(source, batch_lines, batch_bytes)
    chunks = _chunks(stream, gz, chunk_bytes)
    seen = 0
    while limit is None or seen < limit:
        try:
            chunk = next(chunks, b"")
        except GzipError as exc:
            yield from splitter.finish(exc.reason)
            return
        if not chunk:
            break
        seen += len(chunk)
        yield from splitter.feed(chunk)
    yield from splitter.finish()
