"""Streaming reader for delimited text (CSV, tab-separated) that knows every row's line number.

pyarrow parses block by block, so a file of any size is never held in memory. Lines with the wrong
number of fields are skipped and counted; a line whose used fields are all empty is dropped and
counted as ``blank_line``. Each batch comes with ``locate(i)``, the file and physical line of its
i-th row, for error messages.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ml.sources.canonical import SourceError
from ml.sources.interactions.table import InteractionsReport, Log
from ml.sources.interactions.values import Locate

BLOCK_SIZE = 1 << 20  # pyarrow reads several blocks ahead: small blocks bound the memory


@dataclass(frozen=True)
class DelimitedFile:
    path: Path
    delimiter: str
    names: list[str]  # a name for every field of a line
    header_lines: int  # lines before the data
    use: list[str]  # the fields the source needs
    quoted: bool = True  # False for formats whose text may hold a bare '"' (tab-separated)


class _Lines:
    """Physical line numbers of valid rows, from the numbers of the skipped ones.

    With skipped lines s_0 < s_1 < ..., v_j = s_j - header - 1 - j valid rows come before s_j, so
    the k-th valid row (1-based) sits on line k + header + #{j : v_j < k}.
    """

    def __init__(self, header_lines: int):
        self.header = header_lines
        self.valid_before_skipped: list[int] = []

    def skip(self, line: int) -> None:
        j = len(self.valid_before_skipped)
        self.valid_before_skipped.append(line - self.header - 1 - j)

    def line(self, k: int) -> int:
        return k + self.header + bisect_left(self.valid_before_skipped, k)


def stream_delimited(
    spec: DelimitedFile, report: InteractionsReport, log: Log
) -> Iterator[tuple[pa.RecordBatch, Locate]]:
    lines = _Lines(spec.header_lines)
    path = spec.path

    def skip_malformed(row: pacsv.InvalidRow) -> str:
        fields = f"{row.actual_columns} fields, expected {row.expected_columns}"
        where = f"{path.name} line {row.number}: {fields}"
        lines.skip(row.number)
        report.record_dropped("malformed_line", where)
        if report.dropped["malformed_line"] <= 5:
            log(f"{path}: skipping malformed {where}: {row.text[:120]!r}")
        return "skip"

    seen = 0
    try:
        for batch in _open(spec, skip_malformed):
            blank = np.ones(batch.num_rows, dtype=bool)
            for name in spec.use:
                text = pc.utf8_trim_whitespace(batch.column(name))
                blank &= pc.fill_null(pc.equal(text, ""), True).to_numpy(zero_copy_only=False)
            kept = np.flatnonzero(~blank)
            for index in np.flatnonzero(blank):
                line = lines.line(seen + int(index) + 1)
                report.record_dropped("blank_line", f"{path.name} line {line}: blank")

            def locate(i: int, start: int = seen, kept: np.ndarray = kept) -> str:
                return f"{path}: line {lines.line(start + int(kept[i]) + 1)}"

            yield batch.take(pa.array(kept)) if blank.any() else batch, locate
            seen += batch.num_rows
    except pa.ArrowInvalid as e:
        raise csv_error(path, e) from e
    report.files.append(str(path))


def _open(spec: DelimitedFile, on_invalid_row) -> pacsv.CSVStreamingReader:
    return pacsv.open_csv(
        spec.path,
        read_options=pacsv.ReadOptions(
            skip_rows=spec.header_lines,
            column_names=spec.names,
            use_threads=False,
            block_size=BLOCK_SIZE,
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=spec.delimiter,
            quote_char='"' if spec.quoted else False,
            invalid_row_handler=on_invalid_row,
            # Blank lines stay rows, so pyarrow's row numbers are physical line numbers.
            ignore_empty_lines=False,
        ),
        convert_options=pacsv.ConvertOptions(
            include_columns=spec.use,
            column_types=dict.fromkeys(spec.use, pa.string()),
            strings_can_be_null=False,
        ),
    )


def csv_error(path: Path, error: pa.ArrowInvalid) -> SourceError:
    """pyarrow's failure as a message naming the file (and the line, for bad UTF-8)."""
    if "UTF8" in str(error).upper():
        return SourceError(
            f"{path}: line {_first_undecodable_line(path)} is not UTF-8 text; re-encode it as UTF-8"
        )
    return SourceError(f"{path}: cannot parse as delimited text: {error}")


def _first_undecodable_line(path: Path) -> int | None:
    """Only on the error path: the line to name in the message."""
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None
