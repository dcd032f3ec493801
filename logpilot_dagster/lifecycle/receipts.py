"""Purge receipts: what a purge touched, stored in ``purge_receipts`` and ``state/receipts/<id>.json``.

A receipt never holds the purged value or its tokens, only the request's keyed fingerprint
(:meth:`PurgeRequest.fingerprint`), so receipts of the same subject can be matched."""

from __future__ import annotations

import json

import duckdb

from logpilot_dagster.ingest.registry import write_json
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.profile import table_ddl

SCHEMA = """
CREATE TABLE IF NOT EXISTS purge_receipts (
    request_id VARCHAR PRIMARY KEY,
    kind VARCHAR,
    fingerprint VARCHAR,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    touched BIGINT,
    receipt VARCHAR
);
"""


def ensure_receipts_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(table_ddl(SCHEMA))


def earlier_requests(con: duckdb.DuckDBPyConnection, fingerprint: str) -> list[str]:
    """Ids of stored purges of the same subject, oldest first."""
    return [rid for (rid,) in con.execute(
        "SELECT request_id FROM purge_receipts WHERE fingerprint = ? ORDER BY started_at", [fingerprint]).fetchall()]


def store_receipt(con: duckdb.DuckDBPyConnection, paths: LogPilotPaths, receipt: dict) -> None:
    con.execute("INSERT INTO purge_receipts VALUES (?, ?, ?, ?, ?, ?, ?)",
                [receipt["request_id"], receipt["kind"], receipt["fingerprint"], receipt["started_at"],
                 receipt["finished_at"], receipt["total_touched"], json.dumps(receipt, sort_keys=True)])
    write_json(paths.state_dir / "receipts" / f"{receipt['request_id']}.json", receipt)


def format_receipt(receipt: dict) -> str:
    """The receipt as the CLI prints it."""
    lines = [f"purge {receipt['request_id']}  ({receipt['kind']}, fingerprint {receipt['fingerprint']}"
             f"{', DRY RUN' if receipt['dry_run'] else ''})",
             f"  {receipt['started_at']} -> {receipt['finished_at']}"]
    if not receipt["total_touched"]:
        earlier = receipt["earlier_requests"]
        lines.append("  nothing to purge: no stored data matches" +
                     (f" (already purged by {', '.join(earlier)})" if earlier else ""))
    for tier, counts in receipt["touched"].items():
        if counts:
            lines.append(f"  {tier}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    objects = receipt["objects"]
    lines.append(f"  tier objects: {objects['candidates']} candidates, {objects['rewritten']} rewritten, "
                 f"{objects['dropped']} dropped, "
                 f"{objects['catalogued']} in the catalog; {objects['scanned']} scanned for literals, "
                 f"{objects['not_scanned']} archived not scanned, {len(objects['pending_restore'])} awaiting restore")
    landing = receipt["landing"]
    if landing["files"]:
        verb = "rewritten" if landing["rewritten"] else "still hold the value (--include-landing rewrites them)"
        lines.append(f"  landing zone: {len(landing['files'])} files {verb}: " + ", ".join(landing["files"][:10]))
    if receipt["residual"]:
        lines.append("  STILL HOLD A MATCH (binary files, not rewritten): " + ", ".join(receipt["residual"]))
    lines.extend(f"  note: {note}" for note in receipt["notes"])
    return "\n".join(lines)
