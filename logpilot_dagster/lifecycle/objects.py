"""Writing one tier object: rows → zstd Parquet (statistics only on non-text columns), its sha256 and the
pseudonym tokens it holds."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import duckdb
import pyarrow.parquet as pq

#: Pseudonym tokens as ``privacy.pseudonym`` writes them, e.g. ``<EMAIL:3f9a1c2b0d4e>``.
TOKEN_PATTERN = r"<[A-Z0-9_]+:[0-9a-f]{12}>"
#: Columns whose Parquet min/max statistics are kept: no text column, so a footer never copies a value.
STATISTICS_COLUMNS = ["ts", "year", "source_offset"]
BATCH_ROWS = 1 << 20


@dataclass(frozen=True)
class WrittenObject:
    path: Path
    rows: int
    bytes: int
    sha256: str
    min_ts: object
    max_ts: object


def object_key(tier: str, service: str, month: str, sha256: str) -> str:
    """``<tier>/service=<svc>/month=<YYYY-MM>/<sha256[:16]>.parquet`` (content-addressed: a re-run after a
    crash writes the same key)."""
    return f"{tier}/service={quote(service, safe='-_.')}/month={month}/{sha256[:16]}.parquet"


def write_parquet(result: duckdb.DuckDBPyConnection, path: Path) -> WrittenObject:
    """Stream a DuckDB result (ordered, so the bytes are deterministic) into one zstd Parquet file."""
    reader = result.fetch_record_batch(BATCH_ROWS)
    rows, min_ts, max_ts = 0, None, None
    with pq.ParquetWriter(path, reader.schema, compression="zstd", write_statistics=STATISTICS_COLUMNS) as writer:
        for batch in reader:
            if batch.num_rows:
                writer.write_batch(batch, row_group_size=BATCH_ROWS)
                rows += batch.num_rows
    meta = pq.ParquetFile(path).metadata
    if meta.num_rows != rows:
        raise RuntimeError(f"{path}: wrote {rows} rows, the footer says {meta.num_rows}")
    ts = meta.schema.to_arrow_schema().get_field_index("ts")
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(ts).statistics
        min_ts = stats.min if min_ts is None or stats.min < min_ts else min_ts
        max_ts = stats.max if max_ts is None or stats.max > max_ts else max_ts
    with open(path, "rb") as stream:
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
    return WrittenObject(path, rows, path.stat().st_size, digest, min_ts, max_ts)


def tokens_by_file(con: duckdb.DuckDBPyConnection, files: list[Path]) -> dict[str, list[str]]:
    """Every distinct pseudonym token in any text (or text list) column of each Parquet file, by file path."""
    found: dict[str, list[str]] = {str(f): [] for f in files}
    if not files:
        return found
    listed = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
    texts = []
    for name, type_ in con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "
                                   f"read_parquet({listed}))").fetchall():
        if type_ == "VARCHAR":
            texts.append(f'"{name}"')
        elif type_ == "VARCHAR[]":
            texts.append(f"array_to_string(\"{name}\", ' ')")
    text = f"concat_ws(' ', {', '.join(texts)})"
    for file, tokens in con.execute(
            f"SELECT filename, list(DISTINCT token ORDER BY token) FROM (SELECT filename, "
            f"unnest(regexp_extract_all(t, '{TOKEN_PATTERN}')) AS token FROM (SELECT filename, {text} AS t "
            f"FROM read_parquet({listed}, filename = true)) WHERE t LIKE '%<%:%>%') GROUP BY filename").fetchall():
        found[file] = tokens
    return found
