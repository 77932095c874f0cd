"""Kaggle "Spotify Playlists" CSV (spotify_dataset.csv, 1.2 GB in full).

Its header is ``"user_id", "artistname", "trackname", "playlistname"`` with stray spaces and
doubled quotes; some lines have the wrong number of fields. The file is streamed block by block
through pyarrow's CSV reader, so it is never held in memory, and malformed lines are skipped,
counted and reported with their line numbers.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from ml.sources.canonical import CanonicalWriter, IngestReport, ProgressLog, SourceError

EXPECTED_HEADER = ["user_id", "artistname", "trackname", "playlistname"]
COLUMNS = ["user_id", "artist", "track", "playlist"]
BLOCK_SIZE = 1 << 20  # pyarrow reads many blocks ahead: small blocks bound memory


def normalize_header(line: str) -> list[str]:
    """Header fields with their stray quotes and spaces removed, lower-cased."""
    fields = next(csv.reader([line]), [])
    return [f.strip().strip('"').strip().lower() for f in fields]


def read_header(path: Path) -> list[str]:
    with path.open("rb") as f:
        first = f.readline()
    try:
        return normalize_header(first.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}: line 1 is not UTF-8 text ({e.reason})") from e


def is_kaggle_header(header: list[str]) -> bool:
    return header == EXPECTED_HEADER


def first_undecodable_line(path: Path) -> int | None:
    """Only on the error path: find the line to name in the message."""
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def read_kaggle_csv(
    path: Path, writer: CanonicalWriter, report: IngestReport, log: ProgressLog
) -> None:
    header = read_header(path)
    if not is_kaggle_header(header):
        raise SourceError(
            f"{path}: not a Kaggle Spotify Playlists CSV: header is {header}, "
            f"expected {EXPECTED_HEADER} (quotes and spaces ignored)"
        )

    def skip_malformed(row: pacsv.InvalidRow) -> str:
        where = f"line {row.number}: {row.actual_columns} fields, expected {row.expected_columns}"
        report.record_malformed(where)
        if report.malformed_lines <= 5:
            log(f"{path}: skipping malformed {where}: {row.text[:120]!r}")
        return "skip"

    try:
        for batch in _stream(path, skip_malformed):
            writer.write(batch)
    except pa.ArrowInvalid as e:
        raise csv_error(path, e) from e
    report.files.append(str(path))


def csv_error(path: Path, error: pa.ArrowInvalid) -> SourceError:
    """pyarrow's CSV failure as a message naming the file (and the line, for bad UTF-8)."""
    if "UTF8" in str(error).upper():
        line = first_undecodable_line(path)
        return SourceError(f"{path}: line {line} is not UTF-8 text; re-encode the file as UTF-8")
    return SourceError(f"{path}: cannot parse as CSV: {error}")


def _stream(path: Path, on_invalid_row):
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(
            skip_rows=1, column_names=COLUMNS, use_threads=False, block_size=BLOCK_SIZE
        ),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid_row),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(COLUMNS, pa.string()), strings_can_be_null=False
        ),
    )
    yield from reader
