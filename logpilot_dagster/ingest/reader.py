"""Reading landing files into batches of decoded lines with byte offsets; bad input is quarantined, not dropped.

Offsets are byte offsets of each line's start in the (decompressed) stream, so ``source + offset`` names a line
for ever. Reasons: ``empty_file``, ``blank_line``, ``undecodable_utf8``, ``line_too_long``, ``truncated_gzip``,
``bad_gzip``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

MAX_LINE_BYTES = 64 * 1024
QUARANTINE_RAW_CHARS = 2048
CHUNK_BYTES = 8 * 1024 * 1024


@dataclass
class Quarantined:
    source: str
    source_offset: int
    raw: str
    reason: str


@dataclass
class LineBatch:
    """Good lines of one source: text and the byte offset of each line."""

    source: str
    offsets: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lines)


def _preview(data: bytes) -> str:
    text = data[:QUARANTINE_RAW_CHARS].decode("utf-8", "replace")
    return text if len(data) <= QUARANTINE_RAW_CHARS else f"{text}...[{len(data)} bytes]"


def _split(chunk: bytes, base: int, batch: LineBatch) -> None:
    """Append the complete lines of ``chunk`` (which ends at a line boundary) starting at byte ``base``."""
    if chunk.isascii() and b"\r" not in chunk and b"\n\n" not in chunk and not chunk.startswith(b"\n"):
        parts = chunk.decode("ascii").split("\n")
        if parts[-1] == "":
            parts.pop()
        if max(map(len, parts), default=0) <= MAX_LINE_BYTES:
            offset = base
            for part in parts:
                batch.offsets.append(offset)
                offset += len(part) + 1
            batch.lines.extend(parts)
            return
    offset = base
    body = chunk[:-1] if chunk.endswith(b"\n") else chunk
    for raw in body.split(b"\n"):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if not line.strip():
            batch.quarantined.append(Quarantined(batch.source, offset, _preview(line), "blank_line"))
        elif len(line) > MAX_LINE_BYTES:
            batch.quarantined.append(Quarantined(batch.source, offset, _preview(line), "line_too_long"))
        else:
            try:
                batch.lines.append(line.decode("utf-8"))
                batch.offsets.append(offset)
            except UnicodeDecodeError:
                batch.quarantined.append(Quarantined(batch.source, offset, _preview(line), "undecodable_utf8"))
        offset += len(raw) + 1


class GzipError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _chunks(stream: BinaryIO, gz: bool, chunk_bytes: int) -> Iterator[bytes]:
    """Decompressed chunks; a gzip stream that is cut short yields what it had, then raises ``GzipError``."""
    if not gz:
        while chunk := stream.read(chunk_bytes):
            yield chunk
        return
    inflater = zlib.decompressobj(wbits=31)
    produced = fed = False
    while compressed := stream.read(max(chunk_bytes // 4, 4096)):
        while compressed:
            fed = True
            try:
                out = inflater.decompress(compressed)
            except zlib.error as exc:
                raise GzipError("truncated_gzip" if produced else "bad_gzip") from exc
            if out:
                produced = True
                yield out
            compressed = inflater.unused_data if inflater.eof else b""
            if inflater.eof:
                inflater = zlib.decompressobj(wbits=31)  # next member of a multi-member file
                fed = False
    if fed and not inflater.eof:
        raise GzipError("truncated_gzip" if produced else "bad_gzip")


def read_lines(stream: BinaryIO, source: str, gz: bool = False, batch_lines: int = 200_000,
               chunk_bytes: int = CHUNK_BYTES) -> Iterator[LineBatch]:
    """Yield batches of at most about ``batch_lines`` good lines (plus their quarantined neighbours)."""
    batch = LineBatch(source)
    pending = b""
    base = 0
    seen_any = False
    chunks = _chunks(stream, gz, chunk_bytes)
    while True:
        try:
            chunk = next(chunks, b"")
        except GzipError as exc:
            batch.quarantined.append(Quarantined(source, base, _preview(pending), exc.reason))
            pending, seen_any = b"", True
            break
        if not chunk:
            break
        seen_any = True
        data = pending + chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            pending = data
            continue
        _split(data[:cut], base, batch)
        base += cut
        pending = data[cut:]
        if len(batch) >= batch_lines:
            yield batch
            batch = LineBatch(source)
    if pending:
        _split(pending, base, batch)
    if not seen_any:
        batch.quarantined.append(Quarantined(source, 0, "", "empty_file"))
    if len(batch) or batch.quarantined:
        yield batch
