"""The canonical raw table and the writer every source streams into.

Schema (the reference tutorial's cleaned Parquet):
``row_id BIGINT, user_id VARCHAR, artist VARCHAR, track VARCHAR, playlist VARCHAR``.
``row_id`` is the row's position in the source, so playlist order survives any later shuffle.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

CANONICAL_SCHEMA = pa.schema(
    [
        ("row_id", pa.int64()),
        ("user_id", pa.string()),
        ("artist", pa.string()),
        ("track", pa.string()),
        ("playlist", pa.string()),
    ]
)
PAYLOAD_COLUMNS = ["user_id", "artist", "track", "playlist"]
ROW_GROUP_ROWS = 500_000  # small input batches are gathered into row groups of this size
ProgressLog = Callable[[str], None]


class SourceError(ValueError):
    """A source that cannot be read: the message names the path and what was expected."""


@dataclass
class IngestReport:
    source: str
    format: str
    output: str
    rows_written: int = 0
    files: list[str] = field(default_factory=list)
    malformed_lines: int = 0
    malformed_examples: list[str] = field(default_factory=list)

    def record_malformed(self, where: str) -> None:
        self.malformed_lines += 1
        if len(self.malformed_examples) < 20:
            self.malformed_examples.append(where)


def _no_log(_: str) -> None:
    return None


class CanonicalWriter:
    """Streams payload batches into a Parquet file, numbering rows in arrival order.

    Writes to a temporary file and renames it over the target only on success, so a failed
    ingest never destroys what an earlier run materialized. ``schema`` is the playlist table by
    default; its first column is the row number.
    """

    def __init__(
        self,
        output: Path,
        log: ProgressLog = _no_log,
        log_every: int = 1_000_000,
        schema: pa.Schema = CANONICAL_SCHEMA,
    ):
        self.output = output
        self.schema = schema
        self.tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._log = log
        self._log_every = log_every
        self._next_log = log_every

    def __enter__(self) -> CanonicalWriter:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self.tmp, self.schema, compression="zstd")
        return self

    def write(self, payload: pa.Table | pa.RecordBatch) -> None:
        """Append rows holding the payload columns (the schema's all but the first; the
        playlist table's take any string-like types)."""
        n = payload.num_rows
        if n == 0:
            return
        columns = [pa.array(range(self.rows, self.rows + n), pa.int64())]
        columns += [payload.column(f.name).cast(f.type) for f in list(self.schema)[1:]]
        self._pending.append(pa.Table.from_arrays(columns, schema=self.schema))
        self._pending_rows += n
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()
        self.rows += n
        if self.rows >= self._next_log:
            self._log(f"ingested {self.rows:,} rows")
            self._next_log += self._log_every

    def write_rows(self, rows: Iterable[tuple[str, str | None, str | None, str]]) -> None:
        """Append Python tuples (user_id, artist, track, playlist)."""
        users, artists, tracks, playlists = [], [], [], []
        for user, artist, track, playlist in rows:
            users.append(user)
            artists.append(artist)
            tracks.append(track)
            playlists.append(playlist)
        self.write(
            pa.table(
                {"user_id": users, "artist": artists, "track": tracks, "playlist": playlists},
                schema=pa.schema([(c, pa.string()) for c in PAYLOAD_COLUMNS]),
            )
        )

    def _flush(self) -> None:
        if self._pending:
            assert self._writer is not None
            self._writer.write_table(pa.concat_tables(self._pending))
            self._pending, self._pending_rows = [], 0

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._writer is not None
        if exc_type is None:
            self._flush()
        self._writer.close()
        if exc_type is None:
            os.replace(self.tmp, self.output)
        else:
            self.tmp.unlink(missing_ok=True)
