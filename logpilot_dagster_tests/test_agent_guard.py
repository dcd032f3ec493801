"""The SQL guard: only single read-only SELECTs over the allowed tables run, with a row cap and a timeout."""

import time

import duckdb
import pytest

from logpilot_dagster.agent.guard import GuardError, check_sql, run_query
from logpilot_dagster.storage.warehouse import connect, ensure_schema


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("guard") / "logs.duckdb"
    with connect(path) as con:
        ensure_schema(con)
        con.execute(
            "INSERT INTO logs (event_id, ts, service, level, message, year) "
            "SELECT 'e' || i, TIMESTAMP '2024-01-01' + i * INTERVAL 1 MINUTE, 'payments-api', "
            "CASE WHEN i % 10 = 0 THEN 'ERROR' ELSE 'INFO' END, 'line ' || i, 2024 FROM range(3000) t(i)"
        )
    return path


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE logs",
        "DELETE FROM logs",
        "UPDATE logs SET level = 'INFO'",
        "INSERT INTO logs (event_id) VALUES ('x')",
        "CREATE TABLE notes AS SELECT 1",
        "ALTER TABLE logs ADD COLUMN x INT",
        "SELECT 1; DROP TABLE logs",
        "PRAGMA table_info('logs')",
        "ATTACH 'other.duckdb' AS other",
        "COPY logs TO 'out.csv'",
        "SET enable_external_access = true",
        "INSTALL httpfs",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('x.parquet')",
        "SELECT * FROM 'data.csv'",
        "SELECT * FROM glob('*')",
        "SELECT * FROM duckdb_settings()",
        "SELECT getenv('HOME')",
        "SELECT * FROM stream_offsets",
        "SELECT * FROM information_schema.tables",
        "SELECT * INTO copy_of_logs FROM logs",
        "WITH gone AS (DELETE FROM logs RETURNING *) SELECT * FROM gone",
        "this is not sql",
    ],
)
def test_guard_rejects_everything_but_one_select_over_allowed_tables(sql):
    with pytest.raises(GuardError):
        check_sql(sql)


def test_guard_allows_ctes_joins_and_set_operations(db):
    sql = (
        "WITH e AS (SELECT service, count(*) AS n FROM logs WHERE level = 'ERROR' GROUP BY service) "
        "SELECT e.service, e.n, c.department FROM e LEFT JOIN system_catalog c ON c.system_name = e.service "
        "UNION ALL SELECT 'total', count(*), NULL FROM logs"
    )
    result = run_query(db, sql)
    assert ("payments-api", 300, None) in result.rows
    assert ("total", 3000, None) in result.rows


def test_row_cap_is_enforced_and_reported(db):
    result = run_query(db, "SELECT event_id FROM logs", max_rows=50)
    assert len(result.rows) == 50 and result.truncated
    assert "LIMIT 51" in result.sql
    small = run_query(db, "SELECT event_id FROM logs ORDER BY event_id LIMIT 7", max_rows=50)
    assert len(small.rows) == 7 and not small.truncated


def test_slow_query_is_interrupted(db):
    started = time.perf_counter()
    with pytest.raises(duckdb.InterruptException):
        run_query(db, "SELECT count(*) FROM logs a, logs b, logs c WHERE a.message < b.message", timeout_s=0.3)
    assert time.perf_counter() - started < 5


def test_queries_run_read_only_and_leave_the_warehouse_unchanged(db):
    run_query(db, "SELECT * FROM logs WHERE message ILIKE '%; DROP TABLE logs; --%'")
    with connect(db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM logs").fetchone()[0] == 3000
