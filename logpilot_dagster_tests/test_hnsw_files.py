"""Chroma's persisted HNSW buffer: slots past the element count are heap garbage, cleared after every write."""

import subprocess
import sys
from datetime import datetime, timezone

from logpilot_dagster.knowledge.hnsw_files import _HEADER, zero_unused_capacity
from logpilot_dagster.knowledge.vectors import search_templates, sync_template_vectors

MARKER = b"raw line from planted.person@example.org"
WHEN = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _templates(n):
    return [{"template_id": f"t{i}", "service": "api", "count": 1, "first_seen": WHEN, "last_seen": WHEN,
             "template": f"connection {i} to <*> refused after <*> retries"} for i in range(n)]


def _segments(chroma_dir):
    for header in chroma_dir.glob("*/header.bin"):
        _v, _o, max_elements, count, per_element = _HEADER.unpack_from(header.read_bytes())
        yield header.with_name("data_level0.bin"), max_elements, count, per_element


def test_unused_slots_are_zeroed_and_the_store_still_answers(tmp_path):
    chroma_dir = tmp_path / "chroma"
    assert sync_template_vectors(_templates(3), chroma_dir)["embedded"] == 3
    segments = list(_segments(chroma_dir))
    assert segments, "no HNSW segment persisted: the check below would prove nothing"
    for data, max_elements, count, per_element in segments:
        assert data.stat().st_size == max_elements * per_element  # the whole capacity is on disk
        with open(data, "r+b") as fh:  # what a heap that held raw lines leaves in the unused slots
            fh.seek(count * per_element)
            fh.write(MARKER * 3)
        assert MARKER in data.read_bytes()
    assert zero_unused_capacity(chroma_dir) > 0
    assert all(MARKER not in data.read_bytes() for data, *_ in segments)
    # a fresh process opens the scrubbed store and finds the vectors
    code = ("import sys; from logpilot_dagster.knowledge.vectors import search_templates as s; "
            "print(s('connection refused', sys.argv[1], k=3)[0]['template_id'])")
    out = subprocess.run([sys.executable, "-c", code, str(chroma_dir)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().startswith("t")
    assert search_templates("connection refused", chroma_dir, k=3)


def test_every_write_leaves_no_garbage_past_the_count(tmp_path):
    chroma_dir = tmp_path / "chroma"
    sync_template_vectors(_templates(5), chroma_dir)
    for data, max_elements, count, per_element in _segments(chroma_dir):
        assert data.read_bytes()[count * per_element:] == bytes(max_elements * per_element - count * per_element)


def test_an_unknown_layout_is_left_alone(tmp_path):
    segment = tmp_path / "chroma" / "seg"
    segment.mkdir(parents=True)
    (segment / "header.bin").write_bytes(_HEADER.pack(1, 0, 2, 1, 10))
    (segment / "data_level0.bin").write_bytes(MARKER)  # 40 bytes, more than 2 slots of 10
    assert zero_unused_capacity(tmp_path / "chroma") == 0
    assert (segment / "data_level0.bin").read_bytes() == MARKER
