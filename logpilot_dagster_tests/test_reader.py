"""Reading landing files: offsets, gzip, and bad input quarantined with a reason (never dropped)."""

import gzip
import io

from logpilot_dagster.ingest.reader import MAX_LINE_BYTES, read_lines


def _read(data: bytes, gz: bool = False):
    batches = list(read_lines(io.BytesIO(data), "f", gz=gz, batch_lines=3))
    lines = [(o, t) for b in batches for o, t in zip(b.offsets, b.lines)]
    quarantined = [(q.source_offset, q.reason) for b in batches for q in b.quarantined]
    return lines, quarantined


def test_byte_offsets_and_bad_lines():
    data = b"one\ntwo\n\n\xff\xfebad\r\n" + b"x" * (MAX_LINE_BYTES + 1) + b"\nlast"
    lines, quarantined = _read(data)
    assert lines == [(0, "one"), (4, "two"), (16 + MAX_LINE_BYTES + 2, "last")]
    assert quarantined == [(8, "blank_line"), (9, "undecodable_utf8"), (16, "line_too_long")]


def test_gzip_multimember_truncated_and_not_gzip():
    body = b"".join(f"line {i}\n".encode() for i in range(5000))
    lines, quarantined = _read(gzip.compress(body) + gzip.compress(b"tail\n"), gz=True)
    assert len(lines) == 5001 and not quarantined
    whole = gzip.compress(bytes(range(256)) * 2000 + body)
    lines, quarantined = _read(whole[: len(whole) // 2], gz=True)
    assert quarantined and quarantined[-1][1] in ("truncated_gzip", "undecodable_utf8")
    assert _read(b"plain text", gz=True)[1] == [(0, "bad_gzip")]


def test_empty_file_is_recorded():
    assert _read(b"") == ([], [(0, "empty_file")])
