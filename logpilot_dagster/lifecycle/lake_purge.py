"""The lake profile's end of a purge: after the re-mask has committed, DuckLake still holds the old values in the
data files it replaced (kept for time travel), in their snapshots, and in its catalog's column statistics
(``min_value``/``max_value`` per table and per data file, in Postgres). :func:`forget_history` removes them.

1. Every data file with deleted rows is rewritten (``ducklake_rewrite_data_files``, threshold 0), all snapshots
   but the current one expire, and the replaced files are deleted at once (``cleanup_all``): the data path (a
   directory or S3) then holds only rows as they are now. Time travel to before the purge is gone.
2. In Postgres, the table-level text statistics are recomputed from the statistics of the live files (per file
   they are fresh: written with the rewritten files), and ``VACUUM (FULL, ANALYZE)`` rewrites the statistics
   tables so no dead tuple keeps the old value, and refreshes Postgres' own planner samples (``pg_statistic``,
   itself vacuumed when the catalog user may).

Not covered: Postgres' write-ahead log (``pg_wal``, and WAL archives or replicas) keeps the old tuples until its
segments are recycled and overwritten (:data:`WAL_NOTE`, in the receipt).
"""

from __future__ import annotations

import duckdb

from logpilot_dagster.storage import profile
from logpilot_dagster.storage.lake import CATALOG, LakeSettings

#: How long VACUUM FULL waits for the statistics tables (every DuckLake commit queues behind it meanwhile).
LOCK_TIMEOUT_S = 30
STATS_TABLES = ("ducklake_table_column_stats", "ducklake_file_column_stats")
WAL_NOTE = ("lake profile: the data files, snapshots and catalog statistics were rewritten, but the catalog's "
            "Postgres write-ahead log (pg_wal, WAL archives, replicas, backups) keeps the old statistics tuples "
            "until its segments are recycled and overwritten; time travel to snapshots before this purge is gone")

#: Table-level min/max of every text column (list elements included), from the statistics of the live files;
#: "C" collation: byte order, as DuckDB compares strings.
_RECOMPUTE = """
UPDATE ducklake_table_column_stats t SET min_value = s.min_value, max_value = s.max_value
FROM (SELECT c.table_id, c.column_id, min(f.min_value COLLATE "C") AS min_value,
             max(f.max_value COLLATE "C") AS max_value
      FROM (SELECT DISTINCT table_id, column_id FROM ducklake_column WHERE column_type = 'varchar') c
      LEFT JOIN ducklake_data_file d ON d.table_id = c.table_id AND d.end_snapshot IS NULL
      LEFT JOIN ducklake_file_column_stats f ON f.data_file_id = d.data_file_id AND f.column_id = c.column_id
      GROUP BY c.table_id, c.column_id) s
WHERE t.table_id = s.table_id AND t.column_id = s.column_id
  AND (t.min_value IS DISTINCT FROM s.min_value OR t.max_value IS DISTINCT FROM s.max_value)
"""


def postgres_dsn(settings: LakeSettings) -> str:
    """The libpq string of the lake's catalog; refuses a catalog that is not in Postgres."""
    if not settings.catalog.startswith("postgres:"):
        raise ValueError(f"purge on the lake profile needs its catalog in Postgres (LOGPILOT_LAKE_CATALOG="
                         f"postgres:...), not {settings.catalog.split(':', 1)[0]!r}")
    return settings.catalog[len("postgres:"):]


def compact_lake(con: duckdb.DuckDBPyConnection) -> None:
    """Rewrite every data file with deletes, expire every older snapshot and delete the replaced files now."""
    def rewrite() -> None:
        con.execute(f"CALL ducklake_rewrite_data_files('{CATALOG}', delete_threshold => 0.0)")

    profile.retry_conflicts(rewrite, "purge: rewrite lake data files")
    con.execute(f"CALL ducklake_expire_snapshots('{CATALOG}', older_than => now())")
    con.execute(f"CALL ducklake_cleanup_old_files('{CATALOG}', cleanup_all => true)")


def scrub_catalog(settings: LakeSettings) -> None:
    """Recompute the table-level text statistics and rewrite the statistics tables (and ``pg_statistic``)."""
    from logpilot_dagster.storage.warehouse import load_extension

    con = duckdb.connect()
    try:
        load_extension(con, "postgres_scanner")
        dsn = f"{postgres_dsn(settings)} options='-c lock_timeout={LOCK_TIMEOUT_S * 1000}'".replace("'", "''")
        con.execute(f"ATTACH '{dsn}' AS purge_catalog (TYPE postgres)")
        con.execute("CALL postgres_execute('purge_catalog', ?)", [_RECOMPUTE])
        vacuum = f"VACUUM (FULL, ANALYZE) {', '.join(STATS_TABLES)}"
        try:
            con.execute("CALL postgres_execute('purge_catalog', ?, use_transaction => false)", [vacuum])
        except duckdb.Error as exc:
            if "lock timeout" not in str(exc):
                raise
            raise RuntimeError(f"purge: the catalog's statistics tables stayed locked for {LOCK_TIMEOUT_S} s (a "
                               "long transaction on the lake, e.g. an idle one); the data is already purged: run "
                               "the same purge again to finish the catalog") from exc
        # a WARNING, not an error, when the catalog user is not a superuser
        con.execute("CALL postgres_execute('purge_catalog', 'VACUUM FULL pg_catalog.pg_statistic', "
                    "use_transaction => false)")
    finally:
        con.close()


def forget_history(con: duckdb.DuckDBPyConnection, settings: LakeSettings) -> None:
    """Steps 1 and 2 above, on ``con`` (a read-write lake connection, outside a transaction)."""
    compact_lake(con)
    scrub_catalog(settings)
