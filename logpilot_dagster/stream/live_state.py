"""``state/live.json``: the live worker's progress (mode, lag, rate, heads) for readers that must not open DuckDB,
such as the Dagster sensor. Written atomically every report interval; a missing or torn file reads as empty."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

STATE_FILE = "live.json"


def state_file(state_dir: Path, member: str | None = None) -> Path:
    """``live.json``, or ``live.MEMBER.json`` for one member of a consumer group (removed when it stops)."""
    return Path(state_dir) / (f"live.{member}.json" if member else STATE_FILE)


def write(path: Path, **fields) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps({**fields, "pid": os.getpid(), "updated_at": time.time()}))
    os.replace(tmp, path)


def read(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
