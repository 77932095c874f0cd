"""Offline serving: recommendations precomputed into DuckDB tables for low-latency lookups.

Each table lives in a DuckDB file of its own, built in a temporary file and swapped in with one
atomic rename: a reader holding the old file keeps reading it, and no one ever sees a table half
written. The lookup column is indexed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from ml.recommenders.base import Queries
from ml.recommenders.popularity import Popularity
from ml.sequences import Sequences
from ml.serving.bundle import Bundle

Log = Callable[[str], None]


def most_played(popularity: Popularity, limit: int) -> np.ndarray:
    """Ids of the ``limit`` tracks first in popularity's ranking (train plays, ties to the lower
    id), ascending; every track when ``limit`` is 0."""
    return np.sort(popularity.ranking[: limit or popularity.n_items])


def next_track_batches(
    bundle: Bundle,
    tracks: np.ndarray,
    k: int,
    batch: int = 20_000,
    log: Log = lambda _: None,
) -> Iterator[pa.RecordBatch]:
    """For each of ``tracks`` (catalogue ids), as a one-track playlist: its top-k next tracks."""
    keys = bundle.catalogue.table.column("key").combine_chunks()
    names = bundle.catalogue.table.select(["key", "artist", "title"])
    n = len(tracks)
    started = time.perf_counter()
    for first in range(0, n, batch):
        items = tracks[first : first + batch]
        queries = Queries(Sequences.from_lengths(items, np.ones(len(items), dtype=np.int64)))
        top, filled = bundle.recommend(queries, k)
        row, slot = np.nonzero(top.ids >= 0)
        chosen = names.take(pa.array(top.ids[row, slot]))
        yield pa.RecordBatch.from_pydict(
            {
                "track_key": keys.take(pa.array(items[row])),
                "rank": pa.array(slot + 1, pa.int32()),
                "next_track_key": chosen.column("key").combine_chunks(),
                "artist": chosen.column("artist").combine_chunks(),
                "title": chosen.column("title").combine_chunks(),
                "score": pa.array(top.scores[row, slot].astype(np.float64)),
                "from_popularity": pa.array(filled[row, slot]),
            }
        )
        done = min(first + batch, n)
        seconds = time.perf_counter() - started
        log(f"{done:,}/{n:,} tracks, {seconds:.0f} s, ~{seconds / done * (n - done):.0f} s left")


def user_items_batches(
    bundle: Bundle,
    histories: Sequences,
    k: int,
    batch: int = 20_000,
    log: Log = lambda _: None,
) -> Iterator[pa.RecordBatch]:
    """For every user the bundle knows: its top-k items, none of ``histories`` (row i: all that
    user row i has, every period, as catalogue ids; fresher than the bundle's own copy)."""
    if bundle.users is None:
        raise ValueError("this bundle carries no users: it is not a user-items bundle")
    if len(histories) != len(bundle.users):
        raise ValueError(f"{len(histories)} histories for the bundle's {len(bundle.users)} users")
    names = bundle.catalogue.table.select(["key", "title"])
    n = len(bundle.users)
    started = time.perf_counter()
    for first in range(0, n, batch):
        rows = np.arange(first, min(first + batch, n), dtype=np.int64)
        queries = Queries(histories.slice(first, first + len(rows)), rows)
        top, filled = bundle.recommend_users(queries, k)
        row, slot = np.nonzero(top.ids >= 0)
        chosen = names.take(pa.array(top.ids[row, slot]))
        yield pa.RecordBatch.from_pydict(
            {
                "user_id": bundle.users.take(pa.array(rows[row])),
                "rank": pa.array(slot + 1, pa.int32()),
                "item_id": chosen.column("key").combine_chunks(),
                "title": chosen.column("title").combine_chunks(),
                "score": pa.array(top.scores[row, slot].astype(np.float64)),
                "from_popularity": pa.array(filled[row, slot]),
            },
            schema=USER_ITEMS_SCHEMA,
        )
        done = first + len(rows)
        seconds = time.perf_counter() - started
        log(f"{done:,}/{n:,} users, {seconds:.0f} s, ~{seconds / done * (n - done):.0f} s left")


def write_table(
    path: Path, name: str, batches: Iterator[pa.RecordBatch], schema: pa.Schema, key: str
) -> int:
    """Replace the DuckDB file at ``path`` with one holding table ``name``; returns its rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}.building")
    staged.unlink(missing_ok=True)
    reader = pa.RecordBatchReader.from_batches(schema, batches)
    with duckdb.connect(str(staged)) as connection:
        connection.register("incoming", reader)
        connection.execute(f"create table {name} as select * from incoming order by {key}")
        connection.execute(f"create index {name}_{key} on {name} ({key})")
        rows = connection.execute(f"select count(*) from {name}").fetchone()[0]
        connection.execute("checkpoint")
    os.replace(staged, path)
    return rows


NEXT_TRACK_SCHEMA = pa.schema(
    [
        ("track_key", pa.string()),
        ("rank", pa.int32()),
        ("next_track_key", pa.string()),
        ("artist", pa.string()),
        ("title", pa.string()),
        ("score", pa.float64()),
        ("from_popularity", pa.bool_()),
    ]
)


USER_ITEMS_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("rank", pa.int32()),
        ("item_id", pa.string()),
        ("title", pa.string()),
        ("score", pa.float64()),
        ("from_popularity", pa.bool_()),
    ]
)


def lookup_ms(path: Path, table: str, key: str, values: list[str]) -> float:
    """Median milliseconds of one lookup by ``key`` through a read-only connection."""
    timings = []
    with duckdb.connect(str(path), read_only=True) as connection:
        for value in values:
            started = time.perf_counter()
            connection.execute(f"select * from {table} where {key} = ?", [value]).fetchall()
            timings.append((time.perf_counter() - started) * 1000)
    return float(np.median(timings)) if timings else float("nan")
