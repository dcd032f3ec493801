"""Test helpers for purges: a home with planted persons, and a byte-level search of every file under it."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import zlib
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from logpilot_dagster.ingest.sample_data import write_sample_home
from logpilot_dagster.storage import profile
import dagster as dg

from logpilot_dagster.defs import backfill_assets as ba
from logpilot_dagster.defs import vector_assets as va
from logpilot_dagster_tests.pipeline import materialize_year, resources

EMAIL = "zelda.planted@forget.example"
VALUE = "Quillon Zanzibar"
SUBJECT = "cust-77341"
NEIGHBOUR = "cust-773410"  # shares the prefix: a whole-word purge of SUBJECT must keep it
KEYS = ("purge-test-key-new", "purge-test-key-old")  # the current key first (rotation)


#: (auth-service landing file, month) that get the planted lines: by default one; tiering tests plant in a month
#: that goes cold, one that goes warm and one that stays hot.
PLANTED = (("auth-service-2022-q1.log", "2022-03"),)
TIERED_PLANTED = PLANTED + (("auth-service-2023-q3.log", "2023-09"), ("auth-service-2023-q4.log", "2023-12"))


def planted_lines(old_token: str, month: str = "2022-03") -> list[str]:
    """auth-service (jsonl) lines on days 1-16 of ``month``: the email, a token from before the last key
    rotation, a value that repeats (so it becomes a template constant), a subject id, a logger name, and one
    bad line."""
    def line(day: int, msg: str, logger: str = "auth.login") -> str:
        return json.dumps({"ts": f"{month}-{day:02d}T10:00:00.000Z", "level": "info", "logger": logger, "msg": msg})
    lines = [line(d, f"Login succeeded for user {EMAIL} from 10.9.8.{d}") for d in (1, 2, 3)]
    lines += [line(d, f"Session resumed for {old_token}") for d in (4, 5)]
    lines += [line(d, f"Password reset requested by {VALUE}") for d in range(6, 12)]
    lines += [line(d, f"Order placed for customer {SUBJECT} total {d}") for d in (12, 13)]
    lines += [line(14, f"Order placed for customer {NEIGHBOUR} total 1")]
    lines += [line(15, "Token refreshed for session 0000beef", logger=VALUE)]
    lines += ['{"ts": "' + month + '-16T10:00:00Z", broken json from ' + f"{EMAIL} {VALUE} {SUBJECT} {old_token}"]
    return lines


def build_planted_home(home: Path, years=(2022, 2023), lines: int = 6000, vectors: bool = True,
                       planted=PLANTED, services: tuple[str, ...] | None = None) -> None:
    """A sample home (only ``services``' landing files, when given) with :func:`planted_lines` appended to
    auth-service files, backfilled through the real Dagster assets (the PII mode and keys come from the
    environment)."""
    from logpilot_dagster.privacy.pseudonym import PseudonymKeys

    write_sample_home(home, total_lines=lines, years=years)
    for other in (home / "landing_zone").iterdir():
        if services and other.name not in services:
            shutil.rmtree(other)
    old_token = PseudonymKeys((KEYS[1].encode(),)).token("email", EMAIL)
    for name, month in planted:
        with open(home / "landing_zone" / "auth-service" / month[:4] / name, "a") as out:
            out.write("\n".join(planted_lines(old_token, month)) + "\n")
    for year in years:
        materialize_year(home, year)
    result = dg.materialize([ba.system_catalog, ba.t1_watermark] + ([va.template_vectors] if vectors else []),
                            resources=resources(home))
    assert result.success
    if not profile.is_lake():  # the lake's Parquet files are searched decoded (``files_holding``)
        store_uncompressed(home / "logs.duckdb")


def store_uncompressed(db: Path) -> None:
    """Rewrite a warehouse with DuckDB's compression off, so that values are visible to a byte search (FSST
    would hide them) and a purge that only deletes would leave them in free blocks."""
    copy = db.with_name("uncompressed.duckdb")
    con = duckdb.connect(str(db), config={"force_compression": "uncompressed"})
    try:
        con.execute(f"ATTACH '{copy}' AS plain")
        con.execute("COPY FROM DATABASE logs TO plain")
        con.execute("DETACH plain")
    finally:
        con.close()
    os.replace(copy, db)


def dump_uncompressed(db: Path, out: Path) -> Path:
    """An uncompressed copy of the warehouse's live data (outside the home), to search it byte by byte too."""
    out.unlink(missing_ok=True)
    con = duckdb.connect(config={"force_compression": "uncompressed"})
    try:
        con.execute(f"ATTACH '{db}' AS live (READ_ONLY)")
        con.execute(f"ATTACH '{out}' AS plain")
        con.execute("COPY FROM DATABASE live TO plain")
        con.execute("DETACH plain")
    finally:
        con.close()
    return out


def _texts(path: Path, data: bytes) -> list[str]:
    """What a byte search must look at in one file: the raw bytes, plus decoded content where compression
    would hide a substring (gzip; every column of a Parquet file, read back with pyarrow)."""
    texts = [data.decode("utf-8", errors="replace")]
    if path.suffix == ".gz":
        texts.append(zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data).decode("utf-8", errors="replace"))
    if path.suffix == ".parquet":
        texts.append(json.dumps(pq.read_table(path).to_pylist(), default=str))
    return texts


def files_holding(root: Path, needles: list[str], whole_word: bool = False, skip: tuple[str, ...] = ()) -> list[str]:
    """Files under ``root`` (relative paths) whose bytes or decoded content hold any needle (case-insensitive;
    ``whole_word``: not inside a longer identifier)."""
    patterns = [re.compile((r"(?<![A-Za-z0-9_\-])" + re.escape(n) + r"(?![A-Za-z0-9_\-])") if whole_word
                           else re.escape(n), re.IGNORECASE) for n in needles]
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(skip):
            continue
        texts = _texts(path, path.read_bytes()) + [rel]
        if any(p.search(t) for p in patterns for t in texts):
            found.append(rel)
    return found


def gunzip_text(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode()
