"""Generated ``logs`` rows for the lifecycle tests and the tiering benchmark (spread over years, some with
pseudonym tokens)."""

from datetime import datetime

import duckdb

SERVICES = ("payments-api", "edge-gateway", "inventory-db")


def insert_logs(con: duckdb.DuckDBPyConnection, rows: int, start: datetime, end: datetime, offset: int = 0) -> None:
    """``rows`` rows with ts evenly from ``start`` to ``end``; every 97th message carries one of five email
    tokens. Event ids ``g<n>`` from ``offset``."""
    step = (end - start).total_seconds() / max(rows, 1)
    services = "[" + ", ".join(f"'{s}'" for s in SERVICES) + "]"
    con.execute(f"""
        INSERT INTO logs
        SELECT 'g' || i AS event_id, ts, {services}[1 + i % 3] AS service,
               ['INFO', 'WARN', 'ERROR', 'DEBUG'][1 + (i // 7) % 4] AS level, 'tpl' || (i % 50) AS template_id,
               'request ' || (i % 1000) || ' took ' || (i % 313) || ' ms' ||
               CASE WHEN i % 97 = 0 THEN ' for <EMAIL:' || substr(md5((i % 5)::VARCHAR), 1, 12) || '>' ELSE '' END
                   AS message,
               ['' || (i % 1000), '' || (i % 313)] AS params, 'landing/' || ({services}[1 + i % 3]) || '.log' AS source,
               i AS source_offset, year(ts) AS year, 'worker-' || (i % 4) AS component
        FROM (SELECT i, TIMESTAMP '{start:%Y-%m-%d %H:%M:%S}'
                        + to_microseconds(CAST((i - {offset}) * {step * 1e6} AS BIGINT)) AS ts
              FROM range({offset}, {offset + rows}) t(i))""")


def stored_event_ids(con: duckdb.DuckDBPyConnection, tier_root) -> list[str]:
    """Every event id in hot ``logs`` and in every warm/cold object of a local tier store (restored copies
    excluded: they duplicate a cold object), with repetitions."""
    keys = [k for (k,) in con.execute("SELECT object_key FROM tier_objects WHERE tier IN ('warm', 'cold')").fetchall()]
    ids = [e for (e,) in con.execute("SELECT event_id FROM logs").fetchall()]
    if keys:
        files = ", ".join(f"'{tier_root}/{k}'" for k in keys)
        ids += [e for (e,) in con.execute(f"SELECT event_id FROM read_parquet([{files}])").fetchall()]
    return ids


#: Answers that must not change when rows move between readable tiers (``{table}``: ``logs`` or ``logs_all``).
AGGREGATES = {
    "by_service_year": "SELECT service, year, count(*) FROM {table} GROUP BY ALL ORDER BY ALL",
    "errors_2023": "SELECT count(*) FROM {table} WHERE level = 'ERROR' AND service = 'payments-api' "
                   "AND ts >= '2023-01-01' AND ts < '2024-01-01'",
    "monthly_levels": "SELECT date_trunc('month', ts) AS m, level, count(*) FROM {table} GROUP BY ALL ORDER BY ALL",
    "top_templates": "SELECT template_id, count(*) AS n FROM {table} GROUP BY ALL ORDER BY n DESC, template_id LIMIT 5",
    "content": "SELECT count(*), sum(hash(event_id, ts, message, params, source, source_offset, component)) "
               "FROM {table}",
}


def answers(con: duckdb.DuckDBPyConnection, table: str) -> dict:
    return {name: con.execute(sql.format(table=table)).fetchall() for name, sql in AGGREGATES.items()}
