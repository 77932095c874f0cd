"""Reads from the DuckDB warehouse, each through a short-lived read-only connection.

DuckDB lets one process hold a file; a connection kept open here would make the next dbt run fail
with "Could not set lock on file", so every read opens, fetches Python objects and closes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb


@contextmanager
def read_only(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: warehouse not found; materialize the dbt models first")
    connection = duckdb.connect(str(path), read_only=True)
    try:
        yield connection
    finally:
        connection.close()


def read_table_rows(path: Path, table: str) -> list[dict]:
    with read_only(path) as connection:
        cursor = connection.execute(f"select * from {table}")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
