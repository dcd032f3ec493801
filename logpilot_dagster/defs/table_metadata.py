"""Dagster's standard table metadata (`dagster/column_schema`, `dagster/table_name`, sizes), derived from the
warehouse's own DDL so the UI's columns never drift from the contract."""

from functools import cache
from pathlib import Path

import dagster as dg
import duckdb

from logpilot_dagster.storage import profile
from logpilot_dagster.storage.lake import CATALOG
from logpilot_dagster.storage.warehouse import SCHEMA


@cache
def _columns() -> dict[str, list[tuple[str, str, bool, bool]]]:
    """table -> [(column, type, nullable, unique)], read back from an in-memory DuckDB that ran the DDL."""
    con = duckdb.connect()
    try:
        con.execute(SCHEMA)  # the contract with its keys, whichever profile stores it
        keys = {(t, cols[0]) for t, cols in con.execute(
            "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
            "WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE') AND len(constraint_column_names) = 1").fetchall()}
        keys.add(("logs", "event_id"))  # unique by construction, without a key (``storage.unique``)
        tables: dict[str, list[tuple[str, str, bool, bool]]] = {}
        for table, column, dtype, nullable in con.execute(
                "SELECT table_name, column_name, data_type, is_nullable = 'YES' FROM information_schema.columns "
                "ORDER BY table_name, ordinal_position").fetchall():
            tables.setdefault(table, []).append((column, dtype, nullable, (table, column) in keys))
        return tables
    finally:
        con.close()


def column_schema(table: str) -> dict:
    """Definition metadata: the table's columns as a `dg.TableSchema`."""
    columns = [dg.TableColumn(name, dtype, constraints=dg.TableColumnConstraints(nullable=nullable, unique=unique))
               for name, dtype, nullable, unique in _columns()[table]]
    return {"dagster/column_schema": dg.TableSchema(columns=columns)}


def table_name(db_path: Path, table: str) -> dict:
    """Run metadata: `dagster/table_name` as DuckDB names it (database = file stem, or `lake`; schema `main`)."""
    return {"dagster/table_name": f"{CATALOG if profile.is_lake() else db_path.stem}.main.{table}"}


def size(n_bytes: int) -> str:
    """A byte count for people: `12.3 MB`."""
    value = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def sizes(n_bytes: int) -> dict:
    """`bytes` as an int (plotted across materializations) and `size` for reading."""
    return {"bytes": dg.MetadataValue.int(n_bytes), "size": dg.MetadataValue.text(size(n_bytes))}
