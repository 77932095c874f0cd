"""Reads from the DuckDB warehouse, each through a short-lived read-only connection.

DuckDB lets one process hold a file; a connection kept open here would make the next dbt run fail
with "Could not set lock on file", so every read opens, fetches Python objects and closes.
"""

from __future__ import annotations

import os
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


def publish(build: Path, published: Path) -> None:
    """Make ``build`` the published warehouse in one atomic rename. The build keeps its own name
    too (a hard link), so the run that made it reads its tables even after a later publish."""
    staged = published.with_name(f".{published.name}.{os.getpid()}.publishing")
    staged.unlink(missing_ok=True)
    os.link(build, staged)
    os.replace(staged, published)
