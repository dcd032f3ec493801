"""Zero the unused capacity of Chroma's persisted HNSW segments.

hnswlib allocates ``max_elements`` slots with ``malloc`` and Chroma persists the whole buffer to
``data_level0.bin``: the slots past ``cur_element_count`` are uninitialised heap, which in a process that
read raw log lines can hold those lines (seen: a raw quarantined line in a store of masked templates). The
used slots are zeroed by hnswlib before they are filled, so only the tail needs clearing.
"""

from __future__ import annotations

import struct
from pathlib import Path

# header.bin: int32 version, then size_t offsetLevel0, max_elements, cur_element_count, size_data_per_element
_HEADER = struct.Struct("<iQQQQ")


def zero_unused_capacity(chroma_dir: Path) -> int:
    """Zero every segment's slots past its element count; returns the bytes cleared."""
    cleared = 0
    for header in Path(chroma_dir).glob("*/header.bin"):
        data = header.with_name("data_level0.bin")
        raw = header.read_bytes()
        if len(raw) < _HEADER.size or not data.exists():
            continue
        _version, _offset, max_elements, count, per_element = _HEADER.unpack_from(raw)
        size = data.stat().st_size
        used = count * per_element
        if count > max_elements or used >= size or size > max_elements * per_element:
            continue  # not the layout this module knows: leave the file alone
        with open(data, "r+b") as fh:
            fh.seek(used)
            fh.write(bytes(size - used))
        cleared += size - used
    return cleared
