"""Reading landing files: offsets, gzip, and bad input quarantined with a reason (never dropped)."""

import gzip
import io
import json
import subprocess
import sys
import zlib

from logpilot_dagster.ingest.reader import BOM, MAX_LINE_BYTES, QUARANTINE_RAW_CHARS, read_lines


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


def test_utf8_bom_is_stripped():
    lines, quarantined = _read(BOM + "2023-01-01 00:00:00 é\nnext\n".encode())
    assert lines == [(3, "2023-01-01 00:00:00 é"), (3 + 23, "next")] and not quarantined
    gz_lines, _ = _read(gzip.compress(BOM + b"a\n"), gz=True)
    assert gz_lines == [(3, "a")]


def test_a_run_of_blank_lines_is_one_record():
    batches = list(read_lines(io.BytesIO(b"a\n" + b"\n" * 10 + b" \r\n\t\nb\n"), "f"))
    q = [(x.source_offset, x.reason, x.lines, x.raw) for b in batches for x in b.quarantined]
    assert q == [(2, "blank_line", 12, "[12 blank lines]")]
    assert [(o, t) for b in batches for o, t in zip(b.offsets, b.lines)] == [(0, "a"), (17, "b")]


def _probe(code: str, limit_mib: int = 1024) -> dict:
    """Run ``code`` (which fills a dict ``out``) in a fresh interpreter capped at ``limit_mib`` of address space;
    adds its peak RSS in MiB (``VmHWM``: unlike ``ru_maxrss`` it does not inherit the forking parent's size)."""
    head = f"import json, resource\nresource.setrlimit(resource.RLIMIT_AS, ({limit_mib << 20}, {limit_mib << 20}))\n"
    tail = ("\nhwm = [line for line in open('/proc/self/status') if line.startswith('VmHWM:')][0]"
            "\nout['rss_mib'] = int(hwm.split()[1]) // 1024\nprint(json.dumps(out))")
    proc = subprocess.run([sys.executable, "-c", head + code + tail], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


COUNT = """
from logpilot_dagster.ingest.reader import read_lines
out = {'lines': 0, 'records': 0, 'batches': 0, 'reasons': {}, 'raw_max': 0, 'good': []}
with open(PATH, 'rb') as f:
    for b in read_lines(f, 'f', gz=PATH.endswith('.gz'), batch_lines=100_000):
        out['batches'] += 1
        out['records'] += b.records
        out['lines'] += len(b) + sum(q.lines for q in b.quarantined)
        out['good'] += list(zip(b.offsets, b.lines))[:5]
        for q in b.quarantined:
            out['reasons'][q.reason] = out['reasons'].get(q.reason, 0) + 1
            out['raw_max'] = max(out['raw_max'], len(q.raw))
"""


def test_a_gzip_of_newlines_is_read_in_bounded_memory(tmp_path):
    """20M blank lines from a 20 KB gzip: a few records, not 20M objects (it took 5.3 GB)."""
    path = tmp_path / "blank.log.gz"
    zipper = zlib.compressobj(9, zlib.DEFLATED, 31)
    path.write_bytes(b"".join([zipper.compress(b"\n" * (1 << 20)) for _ in range(20)] + [zipper.flush()]))
    assert path.stat().st_size < 64 * 1024
    out = _probe(f"PATH = {str(path)!r}" + COUNT, limit_mib=1024)
    assert out["lines"] == 20 << 20 and out["reasons"] == {"blank_line": out["records"]}
    assert out["records"] <= 30 and out["rss_mib"] < 200


def test_a_huge_line_streams_past_in_one_chunk_of_memory(tmp_path):
    """A 600 MB sparse file holding one line and a 300 MB line of NULs from a 300 KB gzip: each is skipped as it
    streams (quarantined with its first bytes), the lines around it load."""
    sparse = tmp_path / "sparse.log"
    with open(sparse, "wb") as f:
        f.write(b"first line\n")
        f.truncate(11 + (600 << 20))
        f.seek(0, io.SEEK_END)
        f.write(b"\nafter\n")
    nul = tmp_path / "nul.log.gz"
    zipper = zlib.compressobj(9, zlib.DEFLATED, 31)
    nul.write_bytes(b"".join([zipper.compress(b"ok\n")] + [zipper.compress(bytes(1 << 20)) for _ in range(300)]
                             + [zipper.compress(b"\nend\n"), zipper.flush()]))
    for path, size, good in ((sparse, 600 << 20, [(0, "first line"), (11 + (600 << 20) + 1, "after")]),
                             (nul, 300 << 20, [(0, "ok"), (3 + (300 << 20) + 1, "end")])):
        out = _probe(f"PATH = {str(path)!r}" + COUNT, limit_mib=1024)
        assert out["reasons"] == {"line_too_long": 1} and [tuple(g) for g in out["good"]] == good
        assert out["lines"] == 3 and out["raw_max"] < QUARANTINE_RAW_CHARS + 64
        assert out["rss_mib"] < 200, out


def test_a_long_line_is_quarantined_with_its_first_bytes():
    data = b"a\n" + b"\x00" * (3 * MAX_LINE_BYTES) + b"\nb"
    batches = list(read_lines(io.BytesIO(data), "f", chunk_bytes=1000))
    (q,) = [q for b in batches for q in b.quarantined]
    assert (q.source_offset, q.reason) == (2, "line_too_long")
    assert q.raw.startswith("\\x00\\x00") and q.raw.endswith(f"...[{3 * MAX_LINE_BYTES} bytes]")
    assert [(o, t) for b in batches for o, t in zip(b.offsets, b.lines)] == [(0, "a"), (3 + 3 * MAX_LINE_BYTES, "b")]
