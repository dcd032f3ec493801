"""Fuzz the reader: random bytes, line lengths, gzip members (concatenated, truncated, trailing garbage) and chunk
sizes, checked against a line-by-line reference: every line is a good line or inside a quarantine record, at its
byte offset, in order, and no batch holds more than its byte budget."""

import gzip
import io
import random
import zlib

import pytest

from logpilot_dagster.ingest.reader import BOM, MAX_LINE_BYTES, QUARANTINE_RAW_CHARS, read_lines

CASES = 400


def _line(r: random.Random) -> bytes:
    kind = r.random()
    if kind < 0.35:
        return "".join(r.choice("abc xyz:=-09") for _ in range(r.randrange(1, 80))).encode()
    if kind < 0.45:
        return "ünïcødé ✓ 日本".encode()[: r.randrange(1, 25)]  # sometimes cut inside a character
    if kind < 0.6:
        return r.choice([b"", b" ", b"\t", b"\r", b"  \r", b"\x0b"])
    if kind < 0.7:
        return bytes(r.randrange(256) for _ in range(r.randrange(1, 40))).replace(b"\n", b"")
    if kind < 0.75:
        return r.choice([b"\x00", b"x", b"\xff"]) * r.randrange(MAX_LINE_BYTES - 2, 3 * MAX_LINE_BYTES)
    if kind < 0.8:
        return b"y" * r.randrange(1, 300) + b"\r"
    return b"2023-01-01 12:00:00 INFO svc: " + str(r.random()).encode()


def _payload(r: random.Random) -> bytes:
    n = r.choice([0, 1, 2, 5, 30, 200])
    body = b"\n".join(_line(r) for _ in range(n))
    if n and r.random() < 0.7:
        body += b"\n"
    if r.random() < 0.15:
        body += b"\n" * r.randrange(1, 5000)
    return (BOM if r.random() < 0.15 else b"") + body


def _gzip(r: random.Random, data: bytes) -> bytes:
    """``data`` as one or more gzip members, sometimes cut short or followed by garbage."""
    cuts = sorted(r.randrange(len(data) + 1) for _ in range(r.choice([0, 0, 1, 3])))
    pieces = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
    blob = b"".join(gzip.compress(p, compresslevel=r.choice([1, 6, 9])) for p in pieces)
    mode = r.random()
    if mode < 0.2:
        return blob[: r.randrange(len(blob))]
    if mode < 0.25:
        return blob + bytes(r.randrange(256) for _ in range(r.randrange(1, 30)))
    return blob


def _inflate(blob: bytes) -> tuple[bytes, bool]:
    """What a whole-buffer inflate gets out of ``blob``, and whether the file is broken (cut or garbage)."""
    out, rest = [], blob
    while rest:
        inflater = zlib.decompressobj(wbits=31)
        try:
            out.append(inflater.decompress(rest))
        except zlib.error:
            return b"".join(out), True
        if not inflater.eof:
            return b"".join(out), True
        rest = inflater.unused_data
    return b"".join(out), False


def _reference(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, bytes without the newline) of every line of a whole stream."""
    pos = len(BOM) if data.startswith(BOM) else 0
    lines = []
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl
        lines.append((pos, data[pos:end]))
        pos = end + 1
    return lines


def _expected(line: bytes) -> tuple[str, str | None]:
    body = line[:-1] if line.endswith(b"\r") else line
    if not body.strip():
        return "blank_line", None
    if len(body) > MAX_LINE_BYTES:
        return "line_too_long", None
    try:
        return "ok", body.decode("utf-8")
    except UnicodeDecodeError:
        return "undecodable_utf8", None


def _check(data: bytes, batches: list, broken: bool, budget: int) -> None:
    records = []
    for batch in batches:
        held = sum(len(t.encode()) for t in batch.lines) + sum(len(q.raw) for q in batch.quarantined)
        assert held <= budget
        assert all(len(q.raw) <= QUARANTINE_RAW_CHARS + 32 for q in batch.quarantined)
        assert batch.offsets == sorted(batch.offsets)
        records += sorted([(o, 1, "ok", t) for o, t in zip(batch.offsets, batch.lines)]
                          + [(q.source_offset, q.lines, q.reason, q.raw) for q in batch.quarantined])
    offsets = [r[0] for r in records]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)  # increasing within and across batches
    ref = _reference(data)
    if broken:  # the last record marks where the stream broke: at the unfinished line, or at the end
        offset, _, reason, _ = records.pop()
        assert reason in ("truncated_gzip", "bad_gzip")
        unfinished = bool(ref) and not data.endswith(b"\n")
        assert offset == (ref[-1][0] if unfinished else len(data)) or offset == 0 == len(records)
        ref = ref[:-1] if unfinished else ref
    elif not ref:
        assert [r[2] for r in records] == ["empty_file"]
        return
    i = 0
    for n, (offset, lines, reason, text) in enumerate(records):
        assert i < len(ref) and ref[i][0] == offset, (n, records[n])
        if reason == "blank_line":
            assert i + lines <= len(ref) and all(_expected(line)[0] == "blank_line" for _, line in ref[i:i + lines])
        else:
            assert _expected(ref[i][1]) == (reason, text if reason == "ok" else None)
        i += lines
    assert i == len(ref)  # nothing lost, nothing invented


@pytest.mark.parametrize("seed", range(4))
def test_reader_accounts_for_every_line_of_random_input(seed):
    r = random.Random(seed)
    for case in range(CASES // 4):
        data = _payload(r)
        gz = r.random() < 0.5
        blob = _gzip(r, data) if gz else data
        data, broken = _inflate(blob) if gz else (data, False)
        chunk = r.choice([1, 7, 64, 1000, 4096, 70_000, 1 << 20] if len(data) < 50_000 else [4096, 70_000, 1 << 20])
        batch_lines, batch_bytes = r.choice([1, 3, 50, 200_000]), r.choice([1, 100, 10_000, 1 << 25])
        batches = list(read_lines(io.BytesIO(blob), "f", gz=gz, batch_lines=batch_lines, chunk_bytes=chunk,
                                  batch_bytes=batch_bytes))
        try:
            _check(data, batches, broken, batch_bytes + chunk + MAX_LINE_BYTES + 2)
        except AssertionError:
            print(f"seed {seed} case {case}: gz={gz} chunk={chunk} lines={batch_lines} bytes={batch_bytes}")
            raise
