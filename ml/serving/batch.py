"""Offline serving: recommendations precomputed into DuckDB tables for low-latency lookups.

Each table lives in a DuckDB file of its own, built in a temporary file and swapped in with one
atomic rename: a reader holding the old file keeps reading it, and no one ever sees a table half
written. The lookup column is indexed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from ml.progress import Log, no_log
from ml.recommenders.base import Queries
from ml.recommenders.popularity import Popularity
from ml.sequences import Sequences
from ml.serving.bundle import Bundle
from ml.serving.lookup import ExactLookup


def most_played(popularity: Popularity, limit: int) -> np.ndarray:
    """Ids of the ``limit`` tracks first in popularity's ranking (train plays, ties to the lower
    id), ascending; every track when ``limit`` is 0."""
    return np.sort(popularity.ranking[: limit or popularity.n_items])


def next_track_batches(
    bundle: Bundle,
    tracks: np.ndarray,
    k: int,
    batch: int = 20_000,
    log: Log = no_log,
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


def user_rows(bundle: Bundle, users: list[str]) -> np.ndarray:
    """The model's row of each user id, -1 for a user it does not know."""
    if bundle.users is None:
        raise ValueError("this bundle carries no users: it is not a user-items bundle")
    return ExactLookup(bundle.users).positions(users)


def user_bases(rows: np.ndarray, histories: Sequences) -> np.ndarray:
    """What each user's recommendations come from: ``user`` (the model knows the user: its row
    >= 0), ``history`` (it does not, and scores the user's items it knows), ``popularity``
    (neither)."""
    if len(histories) != len(rows):
        raise ValueError(f"{len(histories)} histories for {len(rows)} users")
    scored = histories.known().lengths > 0
    return np.where(rows >= 0, "user", np.where(scored, "history", "popularity"))


def user_items_batches(
    bundle: Bundle,
    users: list[str],
    histories: Sequences,
    k: int,
    batch: int = 20_000,
    log: Log = no_log,
) -> Iterator[pa.RecordBatch]:
    """For every one of ``users``: its top-k items, none of ``histories`` (row i: all that
    ``users[i]`` has, every period, as catalogue ids; fresher than the bundle's own copy). A user
    the model knows is scored as it learned them, another from its history, else popularity:
    ``based_on`` says which (``user_bases``)."""
    rows_of = user_rows(bundle, users)
    bases = user_bases(rows_of, histories)
    names = bundle.catalogue.table.select(["key", "title"])
    n = len(users)
    started = time.perf_counter()
    for first in range(0, n, batch):
        stop = min(first + batch, n)
        queries = Queries(histories.slice(first, stop), rows_of[first:stop])
        top, filled = bundle.recommend_users(queries, k)
        row, slot = np.nonzero(top.ids >= 0)
        chosen = names.take(pa.array(top.ids[row, slot]))
        yield pa.RecordBatch.from_pydict(
            {
                "user_id": pa.array(users[first:stop], pa.string()).take(pa.array(row)),
                "rank": pa.array(slot + 1, pa.int32()),
                "item_id": chosen.column("key").combine_chunks(),
                "title": chosen.column("title").combine_chunks(),
                "score": pa.array(top.scores[row, slot].astype(np.float64)),
                "from_popularity": pa.array(filled[row, slot]),
                "based_on": pa.array(bases[first:stop][row], pa.string()),
            },
            schema=USER_ITEMS_SCHEMA,
        )
        seconds = time.perf_counter() - started
        log(f"{stop:,}/{n:,} users, {seconds:.0f} s, ~{seconds / stop * (n - stop):.0f} s left")


def write_table(
    path: Path,
    name: str,
    batches: Iterator[pa.RecordBatch],
    schema: pa.Schema,
    key: str,
    constants: dict[str, str],
) -> int:
    """Replace the DuckDB file at ``path`` with one holding table ``name``: the batches' columns,
    then a column per ``constants`` entry (what the table was built from, on every row, so a
    lookup says it); returns its rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}.building")
    staged.unlink(missing_ok=True)
    reader = pa.RecordBatchReader.from_batches(schema, batches)
    added = "".join(f", ?::varchar as {column}" for column in constants)
    with duckdb.connect(str(staged)) as connection:
        connection.register("incoming", reader)
        connection.execute(
            f"create table {name} as select *{added} from incoming order by {key}",
            list(constants.values()),
        )
        connection.execute(f"create index {name}_{key} on {name} ({key})")
        rows = connection.execute(f"select count(*) from {name}").fetchone()[0]
        connection.execute("checkpoint")
    os.replace(staged, path)
    return rows


def built_from_values(path: Path, name: str, column: str) -> tuple[int, list[str]]:
    """Table ``name``'s rows at ``path`` and the distinct values of one of the columns
    ``write_table`` added (what the table was built from)."""
    with duckdb.connect(str(path), read_only=True) as connection:
        rows, values = connection.execute(
            f"select count(*), list(distinct {column} order by {column}) from {name}"
        ).fetchone()
    return rows, values


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
        ("based_on", pa.string()),
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
