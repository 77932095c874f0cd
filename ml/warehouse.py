"""Reads from the DuckDB warehouse, each through a short-lived read-only connection.

DuckDB lets one process hold a file; a connection kept open here would make the next dbt run fail
with "Could not set lock on file", so every read opens, fetches Python objects and closes.
Sequences come back as Python lists of str: DuckDB's ``.df()`` turns LIST columns into numpy
arrays, on which gensim hangs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Split:
    name: str
    playlist_keys: list[str]
    sequences: list[list[str]]  # full sequences (train) or queries (validation/test)
    labels: list[str | None]


def read_split(path: Path, split: str) -> Split:
    """One split in source order (first_row_id): train gives full tracks, others query + label."""
    column = "tracks" if split == "train" else "query"
    with read_only(path) as connection:
        rows = connection.execute(
            f"select playlist_key, {column}, label from playlist_splits "
            "where split = ? order by first_row_id",
            [split],
        ).fetchall()
    return Split(
        name=split,
        playlist_keys=[r[0] for r in rows],
        sequences=[list(r[1]) for r in rows],
        labels=[r[2] for r in rows],
    )


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
