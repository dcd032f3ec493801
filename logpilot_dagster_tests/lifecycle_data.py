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
        FROM (SELECT i, TIMESTAMP '{start:%Y-%m-%d %H:%M:%S}' + to_microseconds(CAST((i - {offset}) * {step * 1e6} AS BIGINT)) AS ts
              FROM range({offset}, {offset + rows}) t(i))""")
