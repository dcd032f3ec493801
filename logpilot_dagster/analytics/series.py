"""Template time series: lines and bytes per template per hour, kept incrementally in ``template_hourly``.

Each row belongs to an *origin*: ``backfill:<year>`` (recomputed when that year is loaded again) or ``live``
(added to per partition from the offset it reached last, so history is never recomputed). The series outlives
tiering: once a month leaves the hot table its counts stay here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from logpilot_dagster.storage.warehouse import ensure_schema, upsert

ERROR_LEVELS = ("ERROR", "FATAL", "CRITICAL", "SEVERE", "E", "F")



def _aggregate(where: str) -> str:
    levels = ", ".join(f"'{level}'" for level in ERROR_LEVELS)
    return f"""
        SELECT template_id, service, date_trunc('hour', ts) AS hour, count(*) AS lines,
               count(*) FILTER (WHERE upper(level) IN ({levels})) AS errors,
               sum(strlen(message)) AS bytes
        FROM logs WHERE ts IS NOT NULL AND {where} GROUP BY ALL"""


@dataclass
class SeriesUpdate:
    years_recomputed: list[int] = field(default_factory=list)
    live_rows_added: int = 0
    hours: int = 0


def update_series(con: duckdb.DuckDBPyConnection) -> SeriesUpdate:
    """Bring ``template_hourly`` up to date in one transaction: recompute years loaded since the last update,
    add live rows past each partition's last counted offset."""
    ensure_schema(con)
    result = SeriesUpdate()
    con.execute("BEGIN")
    try:
        stale = con.execute("""
            SELECT f.year, max(f.loaded_at) FROM loaded_files f
            LEFT JOIN series_progress p ON p.origin = 'backfill:' || f.year AND p.source = '*'
            GROUP BY f.year, p.loaded_at HAVING p.loaded_at IS NULL OR max(f.loaded_at) > p.loaded_at
            ORDER BY 1""").fetchall()
        for year, loaded_at in stale:
            origin = f"backfill:{year}"
            con.execute("DELETE FROM template_hourly WHERE origin = ?", [origin])
            year_rows = _aggregate("year = ? AND source IN (SELECT source FROM loaded_files WHERE year = ?)")
            con.execute(f"INSERT INTO template_hourly SELECT ?, * FROM ({year_rows})", [origin, year, year])
            upsert(con, "series_progress", "origin, source",
                   "SELECT ? AS origin, '*' AS source, NULL::BIGINT AS position, ?::TIMESTAMP AS loaded_at",
                   [origin, loaded_at])
            result.years_recomputed.append(int(year))
        live_sources = con.execute("""
            SELECT s.topic || '/' || s."partition", coalesce(p.position, -1) FROM stream_offsets s
            LEFT JOIN series_progress p ON p.origin = 'live' AND p.source = s.topic || '/' || s."partition"
            """).fetchall()
        for source, position in live_sources:
            top = con.execute("SELECT max(source_offset), count(*) FROM logs WHERE source = ? AND source_offset > ?",
                              [source, position]).fetchone()
            if not top[1]:
                continue
            new_rows = _aggregate("source = ? AND source_offset > ? AND source_offset <= ?")
            con.execute(f"""
                MERGE INTO template_hourly USING (SELECT 'live' AS origin, * FROM ({new_rows})) AS n
                USING (origin, template_id, service, hour)
                WHEN MATCHED THEN UPDATE SET lines = template_hourly.lines + n.lines,
                                             errors = template_hourly.errors + n.errors,
                                             bytes = template_hourly.bytes + n.bytes
                WHEN NOT MATCHED THEN INSERT BY NAME""", [source, position, top[0]])
            upsert(con, "series_progress", "origin, source",
                   "SELECT 'live' AS origin, ? AS source, ?::BIGINT AS position, now()::TIMESTAMP AS loaded_at",
                   [source, top[0]])
            result.live_rows_added += top[1]
        result.hours = con.execute("SELECT count(DISTINCT hour) FROM template_hourly").fetchone()[0]
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return result
