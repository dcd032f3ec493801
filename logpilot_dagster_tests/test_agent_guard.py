"""The SQL guard: only single read-only SELECTs over the allowed tables and columns run, bounded in size, time,
memory and result bytes; every failure is a ``GuardError``."""

import time

import duckdb
import pytest

from logpilot_dagster.agent import guard
from logpilot_dagster.agent.guard import GuardError, check_sql, run_query
from logpilot_dagster.lifecycle.views import refresh_logs_all
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage.warehouse import connect, ensure_schema

RAW_SECRET = "raw line with alice@example.com"


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
        con.execute("INSERT INTO quarantine VALUES ('a.log', 7, ?, 'bad_timestamp', now())", [RAW_SECRET])
        con.execute("INSERT INTO discovery_queue VALUES ('a', 'a.log', 7, ?, 'no_format_match', now())", [RAW_SECRET])
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
    with pytest.raises(GuardError, match="deadline"):
        run_query(db, "SELECT count(*) FROM logs a, logs b, logs c WHERE a.message < b.message", timeout_s=0.3)
    assert time.perf_counter() - started < 30  # the deadline is 0.3 s; the bound only catches a hang


def test_queries_run_read_only_and_leave_the_warehouse_unchanged(db):
    run_query(db, "SELECT * FROM logs WHERE message ILIKE '%; DROP TABLE logs; --%'")
    with connect(db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM logs").fetchone()[0] == 3000


@pytest.mark.parametrize(
    "sql",
    [
        "WITH discovery_queue AS (SELECT * FROM discovery_queue) SELECT raw FROM discovery_queue",
        "WITH stream_offsets AS (SELECT * FROM stream_offsets) SELECT * FROM stream_offsets",
        "WITH format_rules AS (SELECT * FROM format_rules) SELECT * FROM format_rules",
        "WITH pg_settings AS (SELECT * FROM pg_settings) SELECT * FROM pg_settings",
        "WITH t AS (SELECT * FROM duckdb_tables()) SELECT * FROM t",
        "WITH logs AS (SELECT * FROM loaded_files) SELECT * FROM logs",
        "SELECT * FROM logs WHERE service IN (WITH x AS (SELECT * FROM format_rules) SELECT service FROM x)",
        "SELECT * FROM (WITH x AS (SELECT 1 AS a) SELECT * FROM x) s, x",  # x is out of scope out there
        'WITH "Stream_Offsets" AS (SELECT * FROM STREAM_OFFSETS) SELECT * FROM (SELECT * FROM stream_offsets) s',
    ],
)
def test_ctes_named_like_tables_are_judged_by_the_base_tables_they_read(sql):
    with pytest.raises(GuardError, match="unknown table|not allowed"):
        check_sql(sql)


def test_a_cte_may_shadow_an_allowed_table_with_a_part_of_it(db):
    result = run_query(db, "WITH logs AS (SELECT * FROM logs WHERE level = 'ERROR') SELECT count(*) FROM logs")
    assert result.rows == [(300,)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT raw FROM quarantine",
        "SELECT q.raw FROM quarantine q",
        "WITH q AS (SELECT * FROM quarantine) SELECT raw FROM q",
        "SELECT count(*) FROM logs WHERE message IN (SELECT raw FROM quarantine)",
        "SELECT raw FROM discovery_queue",
    ],
)
def test_raw_bad_lines_are_refused_by_column(sql):
    with pytest.raises(GuardError, match="raw|unknown table"):
        check_sql(sql)


@pytest.mark.parametrize(
    "sql", ["SELECT * FROM quarantine", "SELECT q FROM quarantine q", "SELECT COLUMNS('.*') FROM quarantine"]
)
def test_no_star_or_row_struct_reaches_a_hidden_column(db, sql):
    result = run_query(db, sql)
    assert result.rows and RAW_SECRET not in repr(result.rows)
    assert "reason" in repr(result.columns) + repr(result.rows)


def test_the_query_connection_sees_only_views_of_the_allowed_columns(db):
    """The second wall behind the parser: even SQL that slipped past it could not name another table."""
    with connect(db, read_only=True) as con:
        guard._lock_down(con, LogPilotPaths.from_env(db.parent), None)
        for sql in ("SELECT * FROM discovery_queue", "SELECT * FROM stream_offsets", "SELECT raw FROM quarantine"):
            with pytest.raises(duckdb.Error):
                con.execute(sql)
        assert con.execute("SELECT count(*) FROM logs").fetchone() == (3000,)
        assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "953.6 MiB"  # 1 GB
        with pytest.raises(duckdb.Error):
            con.execute("SET memory_limit = '100GB'")
        with pytest.raises(duckdb.Error):
            con.execute("SELECT * FROM read_csv('/etc/passwd')")


@pytest.mark.parametrize(
    "sql, timeout_s, message",
    [
        ("SELECT repeat('x', 1000000000)", 1.0, "deadline"),  # one call DuckDB cannot interrupt: killed
        ("SELECT range(300000000)", 1.0, "deadline|memory"),
        # caught by the byte cap however long the machine takes to build them (1.2M strings)
        ("SELECT list(message) FROM logs, (SELECT 1 FROM logs LIMIT 400) t", 60.0, "larger than"),
        ("SELECT string_agg(message, ',') FROM logs, (SELECT 1 FROM logs LIMIT 400) t", 60.0, "larger than"),
    ],
)
def test_runaway_queries_stop_at_the_deadline_or_a_cap(db, sql, timeout_s, message):
    started = time.perf_counter()
    with pytest.raises(GuardError, match=message):
        run_query(db, sql, timeout_s=timeout_s)
    assert time.perf_counter() - started < 120  # only catches a hang: unbounded, these ran for 14-160 s
    assert run_query(db, "SELECT count(*) FROM logs").rows == [(3000,)]  # and the next query runs


def test_results_are_capped_in_bytes_and_rows(db):
    with pytest.raises(GuardError, match="larger than"):
        run_query(db, "SELECT message, repeat('y', 2000) FROM logs", max_rows=1000, timeout_s=60)  # ~2 MB
    percent = run_query(db, "SELECT event_id FROM logs LIMIT 100 PERCENT", max_rows=50, timeout_s=60)
    assert len(percent.rows) == 50 and percent.truncated
    assert "PERCENT" not in percent.sql


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM logs WHERE source_offset IN (" + ",".join(map(str, range(200_000))) + ")",
        "SELECT " + "(" * 3000 + "1" + ")" * 3000,
        "WITH " + ", ".join(f"c{i} AS (SELECT * FROM c{i - 1})" for i in range(1, 2000)) + " SELECT * FROM c1999",
        "WITH c0 AS (SELECT 1 AS a), " + ", ".join(f"c{i} AS (SELECT * FROM c{i - 1})" for i in range(1, 40))
        + " SELECT * FROM c39",
    ],
)
def test_oversized_or_deeply_nested_sql_is_refused_before_it_runs(sql):
    started = time.perf_counter()
    with pytest.raises(GuardError, match="limit|nested"):
        check_sql(sql)
    assert time.perf_counter() - started < 10  # unbounded, the IN list took over 60 s to parse


def test_logs_all_reads_the_warm_tier_and_nothing_else_on_disk(db, tmp_path):
    """The locked-down connection may read the tier directories behind ``logs_all``, no other file."""
    paths = LogPilotPaths.from_env(db.parent)
    key = "warm/service=payments-api/month=2020-01/test.parquet"
    target = paths.home / "tiers" / key
    target.parent.mkdir(parents=True, exist_ok=True)
    outside = tmp_path / "outside.parquet"
    with connect(db) as con:
        for path in (target, outside):
            con.execute(f"COPY (SELECT * FROM logs LIMIT 25) TO '{path}' (FORMAT parquet)")
        con.execute("INSERT INTO tier_objects (object_key, tier, service, month, min_ts, max_ts, rows) "
                    "VALUES (?, 'warm', 'payments-api', '2020-01', TIMESTAMP '2020-01-01', TIMESTAMP '2020-01-31', 25)",
                    [key])
        refresh_logs_all(con, paths)
    try:
        assert run_query(db, "SELECT count(*) FROM logs_all").rows == [(3025,)]
        assert run_query(db, "SELECT count(*) FROM logs").rows == [(3000,)]
        with pytest.raises(GuardError):
            run_query(db, f"SELECT count(*) FROM read_parquet('{outside}')")
        with connect(db, read_only=True) as con:
            guard._lock_down(con, paths, None)
            with pytest.raises(duckdb.Error, match="Permission"):
                con.execute(f"SELECT count(*) FROM read_parquet('{outside}')")
    finally:
        with connect(db) as con:
            con.execute("DELETE FROM tier_objects")
            refresh_logs_all(con, paths)
