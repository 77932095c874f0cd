"""The canonical playlist table (``row_id, user_id, artist, track, playlist``) as interactions.

user = ``user_id``; item = the track key exactly as dbt's ``stg_playlist_events`` builds it
(artist and title trimmed of ASCII white space, ``\\`` and ``|`` backslash-escaped, joined by
``|||``; null when either is blank); timestamp = 1970-01-01 00:00:00 + ``row_id`` seconds, a
synthetic clock that keeps the row order (the playlist table has no time): dbt's
``interactions_split: auto`` recognises it and holds out each user's last rows rather than cut
the file by position. Items get the title "artist - track".
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.sources.interactions.table import (
    PAYLOAD_SCHEMA,
    InteractionsReport,
    InteractionsWriter,
    Log,
)
from ml.sources.interactions.values import NAIVE

PLAYLIST_COLUMNS = ["row_id", "user_id", "artist", "track", "playlist"]
BATCH_ROWS = 500_000


def clean_name(values: pa.Array) -> pa.Array:
    """dbt's clean_name: surrounding white space removed (the same RE2 class), blank -> null."""
    text = pc.replace_substring_regex(values.cast(pa.string()), r"^\s+|\s+$", "")
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def escape(values: pa.Array) -> pa.Array:
    return pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), "|", "\\|")


def track_keys(artist: pa.Array, track: pa.Array) -> pa.Array:
    """dbt's pair_key(artist, track); null when either name is blank."""
    return pc.binary_join_element_wise(escape(artist), escape(track), "|||")


def read_playlist_parquet(
    path: Path, writer: InteractionsWriter, report: InteractionsReport, log: Log
) -> None:
    parquet = pq.ParquetFile(path)
    for batch in parquet.iter_batches(columns=PLAYLIST_COLUMNS, batch_size=BATCH_ROWS):
        artist, track = clean_name(batch.column("artist")), clean_name(batch.column("track"))
        keys = track_keys(artist, track)
        timestamps = pc.multiply(batch.column("row_id").cast(pa.int64()), 1_000_000).cast(NAIVE)
        writer.write(
            pa.Table.from_arrays(
                [
                    batch.column("user_id").cast(pa.string()),
                    keys,
                    timestamps,
                    pa.nulls(batch.num_rows, pa.float64()),
                ],
                schema=PAYLOAD_SCHEMA,
            )
        )
        titles = pc.binary_join_element_wise(artist, track, " - ")
        tracks = pa.table({"item_id": keys, "title": titles}).group_by(["item_id", "title"])
        writer.write_items(tracks.aggregate([]).filter(pc.is_valid(pc.field("item_id"))))
        log(f"{path}: {writer.rows:,} interactions so far")
    report.files.append(str(path))
