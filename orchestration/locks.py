"""Locks between processes: a file lock on one machine, a Postgres advisory lock across machines.

Both are released when their holder dies (even by kill -9): the kernel drops a dead process's
file locks, and Postgres a closed session's advisory locks.
"""

from __future__ import annotations

import fcntl
import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TIMEOUT_SECONDS = 60


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes of this machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def advisory_lock(database_url: str, name: str) -> Iterator[None]:
    """An exclusive lock named ``name`` between processes anywhere that reach the database."""
    import psycopg2

    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    connection = psycopg2.connect(database_url, connect_timeout=10)
    try:
        with connection.cursor() as cursor:
            cursor.execute("set lock_timeout = %s", (f"{TIMEOUT_SECONDS}s",))
            cursor.execute("select pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                cursor.execute("select pg_advisory_unlock(%s)", (key,))
    finally:
        connection.close()


@contextmanager
def named_lock(name: str, database_url: str | None, folder: Path) -> Iterator[None]:
    """``advisory_lock`` when a lock database is configured, else a file lock in ``folder``."""
    if database_url:
        with advisory_lock(database_url, name):
            yield
    else:
        safe = hashlib.sha256(name.encode()).hexdigest()[:16]
        with file_lock(folder / f".{safe}.lock"):
            yield
