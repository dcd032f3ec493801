"""Storage profiles, chosen by configuration only: ``LOGPILOT_PROFILE=embedded`` (default) or ``lake``.

- **embedded**: the DuckDB file ``LOGPILOT_HOME/logs.duckdb``, one read-write process at a time (file lock).
- **lake**: DuckLake, its catalog in Postgres and its data on S3 or a shared directory (``storage.lake``).
  Several processes write at once; DuckDB still runs in each process, with the lake attached as ``lake`` and
  made the default catalog (``ATTACH ... ; USE lake``), so every query of the code base runs unchanged.

**Getting a connection.** Always ``storage.warehouse.connect(paths.db_path, read_only=...)``: in the lake
profile ``db_path`` only names the home (``db_path.parent``), the rest comes from ``LakeSettings.from_env``
(``LOGPILOT_LAKE_CATALOG``, ``LOGPILOT_LAKE_DATA``, ``LOGPILOT_LAKE_S3_ENDPOINT_URL``). ``read_only=True``
attaches the lake ``READ_ONLY`` (the agent's sandbox).

**DDL.** DuckLake has no PRIMARY KEY/UNIQUE constraints, indexes, sequences or macros. Contract tables are
written with their keys and passed through :func:`table_ddl`, which keeps the keys in the embedded profile and
drops them in the lake profile. Upserts use ``MERGE INTO`` (both profiles), never ``INSERT OR REPLACE`` /
``ON CONFLICT``.

**Commits and retries.** DuckLake commits optimistically: two transactions that delete from (or update) the
same data file conflict at ``COMMIT`` (``duckdb.TransactionException``, "Transaction conflict"), inserts never
do. :func:`retry_conflicts` re-runs a whole unit of work (open, transaction, commit) with bounded, logged,
jittered backoff. A transaction that must not run next to another of its kind (uniqueness that DuckLake
cannot enforce: one load per year, one rebuild of ``templates``) calls :func:`guard` with a name: it updates
that name's row in ``commit_guards``, so two of them always conflict and one retries on the other's result
(:func:`register_guards` first, outside the big transaction, creates the rows of new names).
In the embedded profile the file lock already serialises writers: :func:`guard` does nothing and
:func:`retry_conflicts` calls once.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from typing import Callable, TypeVar

import duckdb

EMBEDDED, LAKE = "embedded", "lake"
PROFILES = (EMBEDDED, LAKE)
#: Attempts of one unit of work on DuckLake commit conflicts, and the first backoff (doubling, jittered).
CONFLICT_ATTEMPTS = 8
CONFLICT_BACKOFF_S = 0.1

log = logging.getLogger(__name__)
T = TypeVar("T")


def active() -> str:
    """The configured profile (``LOGPILOT_PROFILE``), ``embedded`` when unset."""
    name = (os.environ.get("LOGPILOT_PROFILE") or EMBEDDED).strip().lower()
    if name not in PROFILES:
        raise ValueError(f"LOGPILOT_PROFILE={name!r}: expected one of {', '.join(PROFILES)}")
    return name


def is_lake() -> bool:
    return active() == LAKE


_COLUMN_KEY = re.compile(r"\s+PRIMARY KEY(?=\s*[,\n)])")
_TABLE_KEY = re.compile(r",([ \t]*--[^\n]*)?\s*PRIMARY KEY\s*\([^)]*\)")  # the column's comment stays


def table_ddl(sql: str) -> str:
    """``sql`` as the active profile can run it: keys kept (embedded) or dropped (lake)."""
    if not is_lake():
        return sql
    return _TABLE_KEY.sub(r"\1", _COLUMN_KEY.sub("", sql))


def is_conflict(exc: BaseException) -> bool:
    """A DuckLake commit that lost against a concurrent transaction (worth retrying from the start)."""
    return isinstance(exc, duckdb.TransactionException) and "conflict" in str(exc).lower()


def retry_conflicts(work: Callable[[], T], what: str, attempts: int = CONFLICT_ATTEMPTS,
                    backoff_s: float = CONFLICT_BACKOFF_S) -> T:
    """``work()``, re-run from the start after a commit conflict, at most ``attempts`` times in all."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except duckdb.TransactionException as exc:
            if not is_conflict(exc) or attempt == attempts:
                raise
            delay = backoff_s * 2 ** (attempt - 1) * (0.5 + random.random())
            log.warning("%s: commit conflict (attempt %d of %d), retrying in %.2f s: %s", what, attempt, attempts,
                        delay, str(exc).splitlines()[-1])
            time.sleep(delay)
    raise AssertionError("unreachable")


def guard(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Inside a lake transaction: make it conflict with any concurrent transaction guarded by ``name``.

    A new name is registered by also bumping the ``guards`` row (created with the table), so two first users
    of one name conflict too."""
    if not is_lake():
        return
    [(updated,)] = con.execute("UPDATE commit_guards SET n = n + 1 WHERE name = ?", [name]).fetchall()
    if not updated:
        con.execute("UPDATE commit_guards SET n = n + 1 WHERE name = 'guards'")
        con.execute("INSERT INTO commit_guards VALUES (?, 1)", [name])


def register_guards(con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
    """Create the ``commit_guards`` rows of ``names`` in a small transaction of their own (retried), so that the
    first guarded transactions of new names do not all conflict on the ``guards`` row and redo their work."""
    if not is_lake():
        return

    def register() -> None:
        con.execute("BEGIN TRANSACTION")
        try:
            known = {n for (n,) in con.execute("SELECT name FROM commit_guards").fetchall()}
            for name in [n for n in names if n not in known]:
                guard(con, name)
            con.execute("COMMIT")
        except BaseException:
            rollback(con)
            raise

    retry_conflicts(register, "register commit guards")


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """ROLLBACK when a transaction is still open (a failed COMMIT has already ended it)."""
    try:
        con.execute("ROLLBACK")
    except duckdb.TransactionException:
        pass
