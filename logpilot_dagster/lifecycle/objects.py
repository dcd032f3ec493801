"""Writing one tier object: rows → zstd Parquet (statistics only on non-text columns), its sha256 and the
pseudonym tokens it holds."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: Pseudonym tokens as ``privacy.pseudonym`` writes them, e.g. ``<EMAIL:3f9a1c2b0d4e>``.
TOKEN_PATTERN = r"<[A-Z0-9_]+:[0-9a-f]{12}>"
_TOKEN = re.compile(TOKEN_PATTERN)
#: Columns whose Parquet min/max statistics are kept: no text column, so a footer never copies a value.
STATISTICS_COLUMNS = ["ts", "year", "source_offset"]
#: Rows per row group, whatever the batches that arrive: the same rows always give the same bytes.
ROW_GROUP_ROWS = 1 << 18
#: pyarrow's default zstd level gave objects ~15 % larger at no less CPU here.
ZSTD_LEVEL = 3


@dataclass(frozen=True)
class WrittenObject:
    path: Path
    rows: int
    bytes: int
    sha256: str
    min_ts: object
    max_ts: object
    tokens: list[str]


def object_key(tier: str, service: str, month: str, sha256: str) -> str:
    """``<tier>/service=<svc>/month=<YYYY-MM>/<sha256[:16]>.parquet`` (content-addressed: a re-run after a
    crash writes the same key)."""
    return f"{tier}/service={quote(service, safe='-_.')}/month={month}/{sha256[:16]}.parquet"


def _is_text(type_: pa.DataType) -> bool:
    return pa.types.is_string(type_) or pa.types.is_large_string(type_)


def tokens_in(batch: pa.RecordBatch | pa.Table) -> set[str]:
    """Pseudonym tokens in any text (or text list) column: RE2 over whole columns picks the few rows that
    hold one, Python extracts them."""
    found: set[str] = set()
    for column in batch.columns:
        values = column
        if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
            values = pc.list_flatten(values)
        if not _is_text(values.type) or len(values) == 0:
            continue
        hits = pc.filter(values, pc.fill_null(pc.match_substring_regex(values, TOKEN_PATTERN), False))
        for text in hits.to_pylist():
            found.update(_TOKEN.findall(text))
    return found


class ObjectWriter:
    """One zstd Parquet file written batch by batch in row groups of exactly ``ROW_GROUP_ROWS`` rows."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self._writer = pq.ParquetWriter(path, schema, compression="zstd", compression_level=ZSTD_LEVEL,
                                       write_statistics=STATISTICS_COLUMNS)
        self._buffer: list[pa.RecordBatch] = []
        self._buffered = 0
        self.rows = 0
        self.tokens: set[str] = set()

    def write(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        self.tokens |= tokens_in(batch)
        self._buffer.append(batch)
        self._buffered += batch.num_rows
        self.rows += batch.num_rows
        while self._buffered >= ROW_GROUP_ROWS:
            self._flush(ROW_GROUP_ROWS)

    def _flush(self, rows: int) -> None:
        table = pa.Table.from_batches(self._buffer)
        self._writer.write_table(table.slice(0, rows), row_group_size=rows)
        rest = table.slice(rows)
        self._buffer, self._buffered = rest.to_batches(), rest.num_rows

    def close(self) -> WrittenObject:
        if self._buffered:
            self._flush(self._buffered)
        self._writer.close()
        meta = pq.ParquetFile(self.path).metadata
        if meta.num_rows != self.rows:
            raise RuntimeError(f"{self.path}: wrote {self.rows} rows, the footer says {meta.num_rows}")
        ts = meta.schema.to_arrow_schema().get_field_index("ts")
        stats = [meta.row_group(i).column(ts).statistics for i in range(meta.num_row_groups)]
        with open(self.path, "rb") as stream:
            digest = hashlib.file_digest(stream, "sha256").hexdigest()
        return WrittenObject(self.path, self.rows, self.path.stat().st_size, digest,
                             min((s.min for s in stats), default=None), max((s.max for s in stats), default=None),
                             sorted(self.tokens))
