"""Guarded SQL: one read-only SELECT over an allow-list of tables, run with a row cap and a timeout.

Every query (the offline planner's, an LLM's, a user's) is parsed with sqlglot (DuckDB dialect) and rejected
unless it is a single SELECT/set operation (CTEs allowed) that reads only ``ALLOWED_TABLES`` and calls no
table function or file/system function. The re-generated SQL is what runs, on a short-lived
``read_only`` connection with external (file/network) access switched off.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from logpilot_dagster.storage.warehouse import connect

ALLOWED_TABLES = frozenset({"logs", "templates", "system_catalog", "quarantine", "template_aliases"})
DEFAULT_MAX_ROWS = 200
DEFAULT_TIMEOUT_S = 5.0
_FORBIDDEN_NODES = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Command,
    exp.Copy,
    exp.Set,
    exp.Pragma,
    exp.Attach,
    exp.Detach,
    exp.Use,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Into,
    exp.LoadData,
    exp.Describe,
    exp.Summarize,
    exp.Install,
    exp.ReadCSV,
    exp.ReadParquet,
    exp.TruncateTable,
    exp.Grant,
    exp.Export,
)
#: DuckDB functions that reach files, the network, settings or the catalog internals.
_FORBIDDEN_FUNCTION = re.compile(
    r"^(read_|glob$|getenv$|current_setting$|query$|query_table$|sniff_csv$|duckdb_|pragma_|parquet_|"
    r"iceberg_|delta_|sqlite_|postgres_|mysql_|which_secret$|load_|install_|checkpoint$|force_checkpoint$|"
    r"import_|export_|system$|http_|s3_|ducklake_|fts_|enable_|disable_|set_|current_database$)",
    re.I,
)


class GuardError(ValueError):
    """The SQL is not a single read-only query over the allowed tables."""


@dataclass(frozen=True)
class QueryResult:
    sql: str
    columns: list[str]
    rows: list[tuple]
    truncated: bool
    elapsed_ms: float


def _function_name(node: exp.Func) -> str:
    return node.name if isinstance(node, exp.Anonymous) else node.sql_name()


def check_sql(sql: str, max_rows: int = DEFAULT_MAX_ROWS) -> str:
    """The SQL to run for ``sql`` (a LIMIT of at most ``max_rows + 1`` added), or :class:`GuardError`."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except SqlglotError as exc:
        raise GuardError(f"not parseable as DuckDB SQL: {str(exc).splitlines()[0]}") from exc
    if len(statements) != 1:
        raise GuardError(f"exactly one statement is allowed, got {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, (exp.Select, exp.SetOperation)):
        raise GuardError(f"only SELECT queries are allowed, got {tree.key.upper()}")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            raise GuardError(f"{node.key.upper()} is not allowed")
        if isinstance(node, exp.Table):
            if not isinstance(node.this, exp.Identifier):
                raise GuardError(f"table functions are not allowed: {node.this.sql('duckdb')[:60]}")
            if node.args.get("db") or node.args.get("catalog"):
                raise GuardError(f"qualified table names are not allowed: {node.sql('duckdb')}")
            name = node.name.lower()
            if name not in ALLOWED_TABLES and name not in ctes:
                raise GuardError(f"unknown table {node.name!r}; allowed: {', '.join(sorted(ALLOWED_TABLES))}")
        if isinstance(node, exp.Func) and _FORBIDDEN_FUNCTION.match(_function_name(node) or ""):
            raise GuardError(f"function {_function_name(node)}() is not allowed")
    limit = tree.args.get("limit")
    value = limit.expression if isinstance(limit, exp.Limit) else None
    if not (isinstance(value, exp.Literal) and value.is_int and int(value.this) <= max_rows):
        tree = tree.limit(max_rows + 1)
    return tree.sql(dialect="duckdb")


def run_query(
    db_path: str | Path,
    sql: str,
    max_rows: int = DEFAULT_MAX_ROWS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> QueryResult:
    """Check ``sql`` and run it read-only; interrupted after ``timeout_s`` (raises ``duckdb.InterruptException``)."""
    safe = check_sql(sql, max_rows)
    start = time.perf_counter()
    with connect(db_path, read_only=True, wait_s=timeout_s) as con:
        con.execute("SET enable_external_access = false")
        timer = threading.Timer(timeout_s, con.interrupt)
        timer.start()
        try:
            cursor = con.execute(safe)
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        finally:
            timer.cancel()
    return QueryResult(
        sql=safe,
        columns=columns,
        rows=rows[:max_rows],
        truncated=len(rows) > max_rows,
        elapsed_ms=(time.perf_counter() - start) * 1000,
    )
