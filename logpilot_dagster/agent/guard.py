"""Guarded SQL: one read-only SELECT over an allow-list of tables and columns, bounded in size, time and memory.

Every query (the offline planner's, an LLM's, a user's) is parsed with sqlglot (DuckDB dialect) and rejected
unless it is a single SELECT/set operation that reads only ``ALLOWED_COLUMNS`` and calls no table function or
file/system function. Table references are resolved with sqlglot's scopes, so a CTE named like a forbidden
table (``WITH stream_offsets AS (SELECT * FROM stream_offsets) ...``) is judged by the base table it reads.

The checked SQL runs in a sandbox process (``agent.sandbox``) on a read-only connection whose search path
holds only views of the allowed tables and columns (a second wall behind the parser), with external access
off but for the tier directories behind ``logs_all`` (the home is the database's directory), a memory limit, a row cap, a byte cap on the result, and one deadline over parse + execute + fetch:
DuckDB is interrupted at the deadline, and the process is killed when that does not stop it.
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import Scope, traverse_scope

from logpilot_dagster.agent import sandbox
from logpilot_dagster.lifecycle.views import prepare_reader
from logpilot_dagster.settings import LogPilotPaths
from logpilot_dagster.storage import profile
from logpilot_dagster.storage.lake import open_lake
from logpilot_dagster.storage.warehouse import SCHEMA, connect

#: Columns the agent never sees: raw bad lines (masked or not) stay out of answers.
HIDDEN_COLUMNS = frozenset({("quarantine", "raw")})
#: Columns the sandbox's views derive from hidden ones: ``quarantine.data_ts``, when a quarantined line's data is
#: from: a timestamp in the raw line (the layouts header formats use), else January 1 of the year in its landing
#: path (files are filed by year). Only the time leaves the raw line.
DERIVED_COLUMNS = {"quarantine": (("data_ts", "TIMESTAMP", (
    "coalesce("
    "try_strptime(regexp_extract(raw, '\\d{4}[-/]\\d{2}[-/]\\d{2}[ T]\\d{2}:\\d{2}:\\d{2}'), "
    "['%Y-%m-%d %H:%M:%S', '%Y/%m/%d %H:%M:%S', '%Y-%m-%dT%H:%M:%S']), "
    "try_strptime(regexp_extract(raw, '^\\d{8}-\\d{2}:\\d{2}:\\d{2}'), '%Y%m%d-%H:%M:%S'), "
    "try_strptime(regexp_extract(raw, '[A-Z][a-z]{2} [A-Z][a-z]{2} \\d{2} \\d{2}:\\d{2}:\\d{2} \\d{4}'), "
    "'%a %b %d %H:%M:%S %Y'), "
    "make_timestamp(try_cast(regexp_extract(source, '(?:^|/)((?:19|20)\\d\\d)/', 1) AS BIGINT), 1, 1, 0, 0, 0))")),)}
DEFAULT_MAX_ROWS = 200
DEFAULT_TIMEOUT_S = 5.0
MAX_SQL_CHARS = 20_000
MAX_CTES = 32
MAX_TABLE_REFERENCES = 64
DEFAULT_MAX_BYTES = 1 << 20
MEMORY_LIMIT = "1GB"
#: How long past the deadline the sandbox may take to report before it is killed.
KILL_GRACE_S = 1.0
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
_RESULT = "_logpilot_result"
_ROW_BYTES = "_logpilot_row_bytes"
_ROW_TOO_LARGE = "a result row is larger than the cap of"


class GuardError(ValueError):
    """The SQL was refused (not a single read-only query over the allowed tables and columns, too large,
    too deep) or failed within its bounds (deadline, memory, result size, a DuckDB error)."""


def _allowed_columns() -> dict[str, tuple[tuple[str, str], ...]]:
    """``table -> ((column, type), ...)`` for the tables the agent may read, from the warehouse contract
    (``logs_all``, hot ``logs`` plus the readable tier objects, has the columns of ``logs``)."""
    allowed = {"logs", "templates", "system_catalog", "quarantine", "template_aliases", "template_hourly",
               "template_events"}
    columns = {}
    for statement in sqlglot.parse(SCHEMA, read="duckdb"):
        if isinstance(statement, exp.Create) and isinstance(statement.this, exp.Schema):
            table = statement.this.this.name
            if table in allowed:
                columns[table] = tuple(
                    (c.name, c.args["kind"].sql("duckdb").replace("TEXT", "VARCHAR"))
                    for c in statement.this.expressions
                    if isinstance(c, exp.ColumnDef) and (table, c.name) not in HIDDEN_COLUMNS
                ) + tuple((name, kind) for name, kind, _ in DERIVED_COLUMNS.get(table, ()))
    columns["logs_all"] = columns["logs"]
    return columns


ALLOWED_COLUMNS = _allowed_columns()
ALLOWED_TABLES = frozenset(ALLOWED_COLUMNS)


@dataclass(frozen=True)
class QueryResult:
    sql: str
    columns: list[str]
    rows: list[tuple]
    truncated: bool
    elapsed_ms: float


def _function_name(node: exp.Func) -> str:
    return node.name if isinstance(node, exp.Anonymous) else node.sql_name()


def _parse(sql: str) -> exp.Expression:
    if len(sql) > MAX_SQL_CHARS:
        raise GuardError(f"the SQL is {len(sql):,} characters long; the limit is {MAX_SQL_CHARS:,}")
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except SqlglotError as exc:
        raise GuardError(f"not parseable as DuckDB SQL: {str(exc).splitlines()[0]}") from exc
    except RecursionError as exc:
        raise GuardError("the SQL is nested too deeply") from exc
    if len(statements) != 1:
        raise GuardError(f"exactly one statement is allowed, got {len(statements)}")
    return statements[0]


def _check_tables(tree: exp.Expression) -> None:
    """Every table reference, resolved with scope, is a CTE or an allowed base table; none is left over."""
    resolved, base = set(), []
    for scope in traverse_scope(tree):
        for table in scope.tables:
            resolved.add(id(table))
            if not isinstance(scope.sources.get(table.alias_or_name), Scope):
                base.append(table)
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise GuardError(f"table functions are not allowed: {table.this.sql('duckdb')[:60]}")
        if table.args.get("db") or table.args.get("catalog"):
            raise GuardError(f"qualified table names are not allowed: {table.sql('duckdb')[:60]}")
        if id(table) not in resolved:
            raise GuardError(f"could not resolve the table reference {table.sql('duckdb')[:60]}")
    for table in base:
        if table.name not in ALLOWED_TABLES:
            raise GuardError(f"unknown table {table.name!r}; allowed: {', '.join(sorted(ALLOWED_TABLES))}")
    if len(base) > MAX_TABLE_REFERENCES:
        raise GuardError(f"{len(base)} table references; the limit is {MAX_TABLE_REFERENCES}")


def _check_columns(tree: exp.Expression) -> None:
    """Hidden columns are refused by name in any query that reads their table (the sandbox's views do not
    have them either, so a star, ``COLUMNS(...)`` or a row struct cannot reach them)."""
    read = {t.name for t in tree.find_all(exp.Table)}
    for column in tree.find_all(exp.Column):
        for table, name in HIDDEN_COLUMNS:
            if column.name == name and table in read:
                raise GuardError(f"{table}.{name} is not available to the agent (raw bad lines stay out of answers)")


def check_sql(sql: str, max_rows: int = DEFAULT_MAX_ROWS) -> str:
    """The SQL to run for ``sql`` (a LIMIT of at most ``max_rows + 1`` added), or :class:`GuardError`."""
    tree = _parse(sql)
    if not isinstance(tree, (exp.Select, exp.SetOperation)):
        raise GuardError(f"only SELECT queries are allowed, got {tree.key.upper()}")
    try:
        tree = normalize_identifiers(tree, dialect="duckdb")  # DuckDB matches names case-insensitively
        ctes = list(tree.find_all(exp.CTE))
        if len(ctes) > MAX_CTES:
            raise GuardError(f"{len(ctes)} CTEs; the limit is {MAX_CTES}")
        for node in tree.walk():
            if isinstance(node, _FORBIDDEN_NODES):
                raise GuardError(f"{node.key.upper()} is not allowed")
            if isinstance(node, exp.Func) and _FORBIDDEN_FUNCTION.match(_function_name(node) or ""):
                raise GuardError(f"function {_function_name(node)}() is not allowed")
        _check_tables(tree)
        _check_columns(tree)
        limit = tree.args.get("limit")
        value = limit.expression if isinstance(limit, exp.Limit) else None
        plain = isinstance(limit, exp.Limit) and not limit.args.get("limit_options")
        if not (plain and isinstance(value, exp.Literal) and value.is_int and int(value.this) <= max_rows):
            tree = tree.limit(max_rows + 1)
        return tree.sql(dialect="duckdb")
    except RecursionError as exc:
        raise GuardError("the SQL is nested too deeply") from exc
    except SqlglotError as exc:
        raise GuardError(f"could not analyse the SQL: {str(exc).splitlines()[0]}") from exc


def _lock_down(con: duckdb.DuckDBPyConnection, paths: LogPilotPaths, restrict: dict[str, str] | None) -> None:
    """Leave ``con`` seeing only views of the allowed columns (``restrict``: a filter per table, used to check
    that a draft follows the question's slots), reading no file but the tier objects behind ``logs_all``
    (``lifecycle.views.prepare_reader``: allowed directories, then external access off), and taking no
    further settings."""
    prepare_reader(con, paths)
    catalog = con.execute("SELECT current_database()").fetchone()[0].replace('"', '""')
    for table, columns in ALLOWED_COLUMNS.items():
        derived = {name: expr for name, _, expr in DERIVED_COLUMNS.get(table, ())}
        names = ", ".join(f'{derived[name]} AS "{name}"' if name in derived else f'"{name}"' for name, _ in columns)
        where = f" WHERE {restrict[table]}" if restrict and table in restrict else ""
        try:
            con.execute(f'CREATE TEMP VIEW "{table}" AS SELECT {names} FROM "{catalog}".main."{table}"{where}')
        except duckdb.CatalogException:  # logs_all in a warehouse from before tiering
            if table != "logs_all":
                raise
    con.execute("SET search_path = 'temp.main'")
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET lock_configuration = true")


#: Lake profile: locked-down readers kept in the sandbox process, by (warehouse, restriction); attaching the lake
#: costs about a second (extensions, catalog), too much to pay inside every query's deadline.
_LAKE_READERS: dict[tuple, duckdb.DuckDBPyConnection] = {}
_LAKE_READERS_KEPT = 4


class _LockedReader:
    """A kept lake reader: ``_lock_down`` ran on it once; closing it keeps it."""

    locked_down = True

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def __getattr__(self, name):
        return getattr(self._con, name)


@contextmanager
def _reader(db_path: str, restrict: dict[str, str] | None, wait_s: float) -> Iterator:
    """The read-only connection a guarded query runs on: a fresh one on the embedded file; on the lake one
    kept per restriction (locked down on first use, its settings then frozen by ``lock_configuration``)."""
    if not profile.is_lake():
        with connect(db_path, read_only=True, wait_s=wait_s) as con:
            yield con
        return
    key = (db_path, tuple(sorted((restrict or {}).items())))
    if key not in _LAKE_READERS:
        con = open_lake(Path(db_path).parent, read_only=True, private=True)
        try:
            _lock_down(con, LogPilotPaths.from_env(Path(db_path).parent), restrict)
        except BaseException:
            con.close()
            raise
        while len(_LAKE_READERS) >= _LAKE_READERS_KEPT:
            _LAKE_READERS.pop(next(iter(_LAKE_READERS))).close()
        _LAKE_READERS[key] = con
    yield _LockedReader(_LAKE_READERS[key])


def _execute(db_path: str, sql: str, max_rows: int, timeout_s: float, max_bytes: int,
             restrict: dict[str, str] | None) -> QueryResult:
    """Check and run ``sql`` under one deadline (runs in the sandbox process)."""
    start = time.perf_counter()
    safe = check_sql(sql, max_rows)
    bounded = (
        f"SELECT *, strlen(CAST({_RESULT} AS VARCHAR)) AS {_ROW_BYTES} FROM ({safe}) AS {_RESULT} "
        f"WHERE CASE WHEN strlen(CAST({_RESULT} AS VARCHAR)) > {max_bytes} "
        f"THEN error('{_ROW_TOO_LARGE} {max_bytes:,} bytes') ELSE true END LIMIT {max_rows + 1}"
    )
    with _reader(db_path, restrict, max(timeout_s - (time.perf_counter() - start), 0.0)) as con:
        timer = threading.Timer(max(timeout_s - (time.perf_counter() - start), 0.0), con.interrupt)
        timer.start()
        try:
            if not getattr(con, "locked_down", False):
                _lock_down(con, LogPilotPaths.from_env(Path(db_path).parent), restrict)
            cursor = con.execute(bounded)
            columns = [d[0] for d in cursor.description][:-1]
            rows = cursor.fetchall()
        except duckdb.InterruptException as exc:
            raise GuardError(f"the query ran past its {timeout_s:g} s deadline") from exc
        except duckdb.OutOfMemoryException as exc:
            raise GuardError(f"the query needed more than the {MEMORY_LIMIT} memory limit") from exc
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0]
            raise GuardError(message.split(": ", 1)[-1] if _ROW_TOO_LARGE in message else f"DuckDB: {message}") from exc
        finally:
            timer.cancel()
    if sum(row[-1] or 0 for row in rows) > max_bytes:
        raise GuardError(f"the result is larger than {max_bytes:,} bytes; aggregate or select fewer columns")
    return QueryResult(
        sql=safe,
        columns=columns,
        rows=[row[:-1] for row in rows[:max_rows]],
        truncated=len(rows) > max_rows,
        elapsed_ms=(time.perf_counter() - start) * 1000,
    )


def run_query(
    db_path: str | Path,
    sql: str,
    max_rows: int = DEFAULT_MAX_ROWS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    restrict: dict[str, str] | None = None,
) -> QueryResult:
    """Check ``sql`` and run it in the sandbox; :class:`GuardError` for every failure but a held lock
    (``WarehouseLockedError``, once the file stayed locked until the deadline)."""
    if len(sql) > MAX_SQL_CHARS:  # not even sent
        raise GuardError(f"the SQL is {len(sql):,} characters long; the limit is {MAX_SQL_CHARS:,}")
    try:
        return sandbox.call(_execute, (str(db_path), sql, max_rows, timeout_s, max_bytes, restrict),
                            timeout_s + KILL_GRACE_S)
    except sandbox.Killed as exc:
        raise GuardError(f"the query ran past its {timeout_s:g} s deadline and was stopped ({exc})") from exc
