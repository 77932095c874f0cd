"""The canonical raw table and the writer every source streams into.

Schema (the reference tutorial's cleaned Parquet):
``row_id BIGINT, user_id VARCHAR, artist VARCHAR, track VARCHAR, playlist VARCHAR``.
``row_id`` is the row's position in the source, so playlist order survives any later shuffle.
"""

from __future__ import annotations

import errno
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ml.progress import Log, no_log

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
MALFORMED_EXAMPLES = 20
# errno values that mean "the output folder cannot take more bytes"
OUT_OF_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class SourceError(ValueError):
    """A source that cannot be read: the message names the path and what was expected."""


class OutOfSpaceError(SourceError):
    """The output folder ran out of space; the message names it. The previous output is kept.

    A ``SourceError`` so callers that report ingest failures show it as they show a bad source,
    although retrying after freeing space can succeed.
    """


@dataclass
class IngestReport:
    """What an ingest read, wrote and left out.

    For a CSV source, every physical line is accounted for:
    ``lines_in_file == header_lines + rows_written + continuation_lines + malformed_lines
    + blank_lines`` (``continuation_lines``: lines that continue a row whose quoted field holds a
    line break).
    """

    source: str
    format: str
    output: str
    rows_written: int = 0
    files: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    lines_in_file: int | None = None
    header_lines: int = 0
    continuation_lines: int = 0
    blank_lines: int = 0
    last_line_unterminated: bool = False
    malformed_lines: int = 0
    malformed_examples: list[str] = field(default_factory=list)
    playlists_without_pos: int = 0
    stale_temporaries_removed: list[str] = field(default_factory=list)

    def record_malformed(self, where: str, lines: int = 1) -> None:
        self.malformed_lines += lines
        if len(self.malformed_examples) < MALFORMED_EXAMPLES:
            self.malformed_examples.append(where)


def _pid_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def remove_stale_temporaries(output: Path) -> list[Path]:
    """Delete ``.<output name>.<pid>.tmp`` files left by killed ingests (their pid is gone).

    A live pid's file is kept: another ingest may be writing it right now.
    """
    pattern = re.compile(rf"^\.{re.escape(output.name)}\.(\d+)\.tmp$")
    removed = []
    for path in output.parent.glob(f".{output.name}.*.tmp"):
        match = pattern.match(path.name)
        if match and int(match.group(1)) != os.getpid() and not _pid_is_alive(int(match.group(1))):
            try:
                path.unlink()
            except FileNotFoundError:
                continue  # another run's ingest removed it first
            removed.append(path)
    return sorted(removed)


class CanonicalWriter:
    """Streams payload batches into a Parquet file, numbering rows in arrival order.

    Writes to a temporary file and renames it over the target only on success, so a failed
    ingest never destroys what an earlier run materialized. Temporaries of killed ingests are
    removed on entry (``stale_removed``). ``schema`` is the playlist table by default; its first
    column is the row number.
    """

    def __init__(
        self,
        output: Path,
        log: Log = no_log,
        log_every: int = 1_000_000,
        schema: pa.Schema = CANONICAL_SCHEMA,
    ):
        self.output = output
        self.schema = schema
        self.tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
        self.rows = 0
        self.stale_removed: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._encoder = futures.ThreadPoolExecutor(1, thread_name_prefix="parquet-encoder")
        self._in_flight: futures.Future | None = None
        self._log = log
        self._log_every = log_every
        self._next_log = log_every
        self._started = time.perf_counter()
        # Readers that know how far through their source they are set this (0..1), so progress
        # lines can say how long is left.
        self.share_done: Callable[[], float | None] = lambda: None

    def __enter__(self) -> CanonicalWriter:
        try:
            with self._naming_the_folder():
                self.output.parent.mkdir(parents=True, exist_ok=True)
                self.stale_removed = remove_stale_temporaries(self.output)
                self._writer = pq.ParquetWriter(self.tmp, self.schema, compression="zstd")
        except BaseException:
            self._encoder.shutdown()
            self.tmp.unlink(missing_ok=True)
            raise
        for path in self.stale_removed:
            self._log(f"removed {path.name}, left behind by an ingest that was killed")
        return self

    def write(self, payload: pa.Table | pa.RecordBatch) -> None:
        """Append rows holding the payload columns (the schema's all but the first; the
        playlist table's take any string-like types)."""
        n = payload.num_rows
        if n == 0:
            return
        columns = [pa.array(np.arange(self.rows, self.rows + n, dtype=np.int64))]
        columns += [payload.column(f.name).cast(f.type) for f in list(self.schema)[1:]]
        self._pending.append(pa.Table.from_arrays(columns, schema=self.schema))
        self._pending_rows += n
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()
        self.rows += n
        if self.rows >= self._next_log:
            self._log(self.progress_line())
            self._next_log += self._log_every

    def progress_line(self) -> str:
        seconds = time.perf_counter() - self._started
        line = f"ingested {self.rows:,} rows in {seconds:.0f} s ({self.rows / seconds:,.0f}/s)"
        share = self.share_done()
        if share:
            left = seconds * (1 - share) / share
            line += f", {share:.0%} of the source, ~{left:.0f} s left"
        return line

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
        """Hands the pending rows to the encoding thread, after the previous row group is done:
        Parquet encoding overlaps the reading of the next rows, one row group in flight."""
        if self._pending:
            assert self._writer is not None
            table = pa.concat_tables(self._pending)
            self._pending, self._pending_rows = [], 0
            self._wait_for_encoder()
            self._in_flight = self._encoder.submit(self._writer.write_table, table)

    def _wait_for_encoder(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            with self._naming_the_folder():
                in_flight.result()

    @contextmanager
    def _naming_the_folder(self) -> Iterator[None]:
        """A full disk becomes an error naming the output folder (not a bare Errno 28)."""
        try:
            yield
        except OSError as e:
            if e.errno not in OUT_OF_SPACE_ERRNOS:  # pyarrow sets errno too
                raise
            raise OutOfSpaceError(
                f"{self.output.parent}: no space left to write {self.output.name} ({e}); free "
                "space there (or point NEXT_TRACK_DATA_DIR elsewhere) and ingest again. The "
                f"previous {self.output.name} is unchanged."
            ) from e

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._writer is not None
        try:
            if exc_type is None:
                self._flush()
                self._wait_for_encoder()
                with self._naming_the_folder():
                    self._writer.close()
                os.replace(self.tmp, self.output)
                self._encoder.shutdown()
                return
        except BaseException:
            self._discard()
            raise
        self._discard()

    def _discard(self) -> None:
        """After a failure: let the encoding thread stop, close the file, delete it."""
        if self._in_flight is not None:
            futures.wait([self._in_flight])  # its own error, if any, is secondary to the first
        with suppress(OSError):  # the file is deleted next; a full disk may refuse its footer
            self._writer.close()
        self._encoder.shutdown()
        self.tmp.unlink(missing_ok=True)
