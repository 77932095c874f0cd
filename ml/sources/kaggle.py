"""Kaggle "Spotify Playlists" CSV (spotify_dataset.csv, 1.2 GB in full), plain or compressed.

Its header is ``"user_id", "artistname", "trackname", "playlistname"`` with stray spaces and
doubled quotes; some lines have the wrong number of fields, and some open a quote they never
close. A CSV parser left to itself reads such a quote on across line breaks and swallows
thousands of good rows into one field, so the file is cut into physical lines here first:

- Bytes are read in blocks; numpy finds the line breaks and, over the few lines that hold a
  quote, where a quoted field opens and closes (the same rules as pyarrow's parser: a quote opens
  a field only at its start, ``""`` inside is a literal quote).
- A row whose quoted field runs past its line may continue over at most ``MAX_ROW_LINES`` lines,
  and only over lines that are not rows themselves; otherwise its first line is malformed and
  the next line is read afresh. A field longer than ``MAX_FIELD_CHARS`` makes its row malformed.
- pyarrow parses only the rows so delimited, one block at a time (never the whole file), and
  names rows with the wrong number of fields; their true physical line numbers are reported.

Every line is accounted for in the report (see ``IngestReport``). A file cut mid-line ingests
what is good; its last, unterminated line is a row if it has four fields, else malformed.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ml.sources.canonical import CanonicalWriter, IngestReport, Log, SourceError
from ml.sources.files import compression_of, read_chunks, read_head

EXPECTED_HEADER = ["user_id", "artistname", "trackname", "playlistname"]
COLUMNS = ["user_id", "artist", "track", "playlist"]
READ_BYTES = 8 << 20  # bytes read per block; a block and its parsed rows bound the memory
MAX_ROW_LINES = 3  # a quoted field may hold at most two line breaks
MAX_FIELD_CHARS = 1_000  # longer than any real name: a field that long ran on from a bad quote
MAX_LINE_BYTES = 1 << 20  # a "line" longer than this is not CSV text; it is skipped, not held
LOGGED_MALFORMED = 5
LF, CR, QUOTE, COMMA = 10, 13, 34, 44


def normalize_header(line: str) -> list[str]:
    """Header fields with their stray quotes and spaces removed, lower-cased."""
    fields = next(csv.reader([line]), [])
    return [f.strip().strip('"').strip().lower() for f in fields]


def read_header(path: Path) -> list[str]:
    first = re.split(rb"\r\n|\r|\n", read_head(path, 64 << 10), maxsplit=1)[0]
    try:
        return normalize_header(first.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}: line 1 is not UTF-8 text ({e.reason})") from e


def is_kaggle_header(header: list[str]) -> bool:
    return header == EXPECTED_HEADER


@dataclass
class Lines:
    """The complete physical lines of a block: ``[starts[i], ends[i])``, terminator included."""

    starts: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return len(self.ends)


def split_lines(buf: np.ndarray, at_eof: bool) -> Lines:
    """Line breaks are LF, CRLF and a lone CR (as pyarrow reads them). The bytes after the last
    break form a line only at the end of the file; before it they wait for the next block."""
    ends = np.flatnonzero(buf == LF) + 1
    lone_cr = (buf[:-1] == CR) & (buf[1:] != LF)  # a CR last in a block may be half a CRLF
    if lone_cr.any() or (at_eof and buf[-1] == CR):
        lone = np.flatnonzero(lone_cr)
        if at_eof and buf[-1] == CR:
            lone = np.append(lone, buf.size - 1)
        ends = np.sort(np.concatenate((ends, lone + 1)))
    if at_eof and buf.size and (ends.size == 0 or ends[-1] < buf.size):
        ends = np.append(ends, buf.size)
    starts = np.concatenate(([0], ends[:-1])).astype(ends.dtype)
    return Lines(starts, ends)


def quote_states(buf: np.ndarray, lines: Lines) -> tuple[np.ndarray, np.ndarray]:
    """For each line, whether it ends inside a quoted field when it starts outside (``opens``)
    and when it starts inside one (``stays_open``).

    Quotes come in runs. A run at a field's start (after a comma or a line break) with an odd
    length flips the state: it opens a field, or closes the one a previous line opened. An odd
    run inside a field leaves the state closed: outside a quoted field its quotes are literal,
    inside one its last quote closes it. Even runs are escaped quotes and change nothing. So a
    line's end state is the parity of its flips after its last closing run.
    """
    opens = np.zeros(len(lines), dtype=bool)
    stays_open = np.ones(len(lines), dtype=bool)
    end = int(lines.ends[-1]) if len(lines) else 0
    quotes = np.flatnonzero(buf[:end] == QUOTE)
    if quotes.size == 0:
        return opens, stays_open
    is_first = np.concatenate(([True], np.diff(quotes) != 1))
    run_starts = quotes[is_first]
    run_odd = np.diff(np.append(np.flatnonzero(is_first), quotes.size)) % 2 == 1
    before = buf[np.maximum(run_starts - 1, 0)]
    at_field_start = (run_starts == 0) | (before == COMMA) | (before == LF) | (before == CR)
    flips = np.cumsum(at_field_start & run_odd)
    closes = ~at_field_start & run_odd
    n_runs = run_starts.size
    last_close = np.maximum.accumulate(np.where(closes, np.arange(n_runs), -1))
    line_of_run = np.searchsorted(lines.ends, run_starts, side="right")
    last_in_line = np.flatnonzero(np.append(line_of_run[1:] != line_of_run[:-1], True))
    first_in_line = np.concatenate(([0], last_in_line[:-1] + 1))
    flips_before_line = np.where(first_in_line > 0, flips[first_in_line - 1], 0)
    line_close = last_close[last_in_line]
    closed_in_line = line_close >= first_in_line
    flips_since = flips[last_in_line] - np.where(
        closed_in_line, flips[np.maximum(line_close, 0)], flips_before_line
    )
    odd = flips_since % 2 == 1
    line = line_of_run[last_in_line]
    opens[line] = odd
    stays_open[line] = np.where(closed_in_line, odd, ~odd)
    return opens, stays_open


def _line(buf: np.ndarray, lines: Lines, i: int) -> bytes:
    return buf[lines.starts[i] : lines.ends[i]].tobytes()


def _is_row_alone(line: bytes) -> bool:
    """Read on its own, the line is a complete row: it cannot be the middle of another one."""
    text = line.decode("utf-8", errors="replace").rstrip("\r\n")
    return len(next(csv.reader([text]), [])) == len(COLUMNS)


def _closes_cleanly(line: bytes) -> bool:
    """Entered inside a quoted field, the line's closing quote ends the field: a comma or the
    line's end follows it. A stray quote re-read as a closing one is followed by more text."""
    i = line.find(b'"')
    while i >= 0:
        run_end = i
        while run_end < len(line) and line[run_end] == QUOTE:
            run_end += 1
        if (run_end - i) % 2:
            return line[run_end : run_end + 1] in (b",", b"\r", b"\n", b"")
        i = line.find(b'"', run_end)
    return False


@dataclass
class Rows:
    """How a block's lines form rows: first line of each row and its line count, lines dropped."""

    first_line: np.ndarray  # block line index of each row's first line
    n_lines: np.ndarray
    unclosed: list[int]  # lines whose quote does not close within MAX_ROW_LINES
    blank: np.ndarray  # bool per line
    carry_from: int  # lines from here on wait for the next block


def group_rows(buf: np.ndarray, lines: Lines, at_eof: bool, skip_first: bool) -> Rows:
    """Rows from lines. Only lines that open a quoted field (rare) are looked at one by one."""
    n = len(lines)
    opens, stays_open = quote_states(buf, lines)
    length = lines.ends - lines.starts
    last = buf[lines.ends - 1]
    crlf = (last == LF) & (length >= 2) & (buf[np.maximum(lines.ends - 2, 0)] == CR)
    breaks = ((last == LF) | (last == CR)).astype(np.int64) + crlf
    blank = length == breaks  # nothing but the line break
    row_start = ~blank
    if skip_first and n:
        row_start[0] = False  # the header (already checked): never a row, nor one's start
    n_lines = np.ones(n, dtype=np.int64)
    unclosed: list[int] = []
    carry_from = n
    continued_until = -1
    for s in np.flatnonzero(opens & row_start).tolist():
        if s <= continued_until:
            continue
        closed_at = None
        for j in range(s + 1, min(s + MAX_ROW_LINES, n)):
            line = _line(buf, lines, j)
            if not opens[j] and _is_row_alone(line):
                break  # line j is a row of its own: s's quote is stray
            if not stays_open[j]:
                closed_at = j if _closes_cleanly(line) else None
                break
        else:
            if not at_eof and s + MAX_ROW_LINES > n:
                carry_from = s  # the closing line may be in the next block
                break
        if closed_at is None:
            unclosed.append(s)
            row_start[s] = False
            continue
        row_start[s + 1 : closed_at + 1] = False
        blank[s + 1 : closed_at + 1] = False
        n_lines[s] = closed_at - s + 1
        continued_until = closed_at
    row_start[carry_from:] = False
    blank[carry_from:] = False
    first_line = np.flatnonzero(row_start)
    return Rows(first_line, n_lines[first_line], unclosed, blank, carry_from)


class KaggleCsvReader:
    """Streams one Kaggle CSV into the writer, accounting for every physical line."""

    def __init__(self, path: Path, writer: CanonicalWriter, report: IngestReport, log: Log):
        self.path, self.writer, self.report, self.log = path, writer, report, log
        self.lines_done = 0  # physical lines before the current block
        self.logged = 0

    def run(self) -> None:
        header = read_header(self.path)
        if not is_kaggle_header(header):
            raise SourceError(
                f"{self.path}: not a Kaggle Spotify Playlists CSV: header is {header}, "
                f"expected {EXPECTED_HEADER} (quotes and spaces ignored)"
            )
        self.report.header_lines = 1
        carry, skipping = b"", False
        size, done = self.path.stat().st_size, 0
        if compression_of(self.path) is None:  # compressed: bytes read say nothing of the share
            self.writer.share_done = lambda: done / size if size else None
        for chunk in read_chunks(self.path, READ_BYTES):
            done += len(chunk)
            if skipping:  # the rest of a line longer than MAX_LINE_BYTES
                cut = _first_line_break(chunk)
                if cut < 0:
                    continue
                chunk, skipping = chunk[cut:], False
            data = carry + chunk
            complete = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
            if len(data) - complete > MAX_LINE_BYTES:
                self._read_block(np.frombuffer(data[:complete], dtype=np.uint8), at_eof=True)
                self._skip_long_line()
                carry, skipping = b"", True
                continue
            carry = data[self._read_block(np.frombuffer(data, dtype=np.uint8), False) :]
        if carry:
            self._read_block(np.frombuffer(carry, dtype=np.uint8), at_eof=True)
        self.report.lines_in_file = self.lines_done
        self.report.files.append(str(self.path))
        r = self.report
        self.log(
            f"{self.path}: {r.lines_in_file:,} lines: 1 header, {r.rows_written:,} rows "
            f"(+{r.continuation_lines:,} lines continuing a quoted field), "
            f"{r.malformed_lines:,} malformed, {r.blank_lines:,} blank"
        )

    def _skip_long_line(self) -> None:
        self.lines_done += 1
        self._malformed(f"line {self.lines_done}: longer than {MAX_LINE_BYTES:,} bytes", b"", 1)

    def _read_block(self, buf: np.ndarray, at_eof: bool) -> int:
        """Reads the rows of the block's complete lines; returns where its unread tail starts."""
        if buf.size == 0:
            return 0
        lines = split_lines(buf, at_eof)
        rows = group_rows(buf, lines, at_eof, skip_first=self.lines_done == 0)
        dropped = [(s, 1, "a quote opened and never closed") for s in rows.unclosed]
        if rows.first_line.size:
            dropped += self._parse_rows(buf, lines, rows)
        for first, count, what in sorted(dropped):
            self._drop(buf, lines, first, count, what)
        self.report.blank_lines += int(rows.blank.sum())
        self.lines_done += rows.carry_from
        if at_eof and buf[-1] not in (LF, CR):
            self.report.last_line_unterminated = True
            self.log(
                f"{self.path}: the file does not end with a line break: its last line "
                f"({self.lines_done:,}) may have been cut"
            )
        if rows.carry_from < len(lines):
            return int(lines.starts[rows.carry_from])
        return int(lines.ends[-1]) if len(lines) else 0

    def _parse_rows(self, buf: np.ndarray, lines: Lines, rows: Rows) -> list[tuple[int, int, str]]:
        """Parses and writes the delimited rows; returns the malformed ones as
        (first line, line count, what is wrong)."""
        starts = lines.starts[rows.first_line]
        ends = lines.ends[rows.first_line + rows.n_lines - 1]
        if np.array_equal(starts[1:], ends[:-1]):
            text = buf[starts[0] : ends[-1]]  # contiguous rows: no copy
        else:
            edges = np.zeros(buf.size + 1, dtype=np.int8)
            edges[starts] += 1
            edges[ends] -= 1
            text = buf[np.cumsum(edges[:-1], dtype=np.int8) > 0]
        invalid: list[tuple[int, int, int]] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            invalid.append((row.number - 1, row.actual_columns, row.expected_columns))
            return "skip"

        try:
            table = pacsv.read_csv(
                pa.py_buffer(text),
                read_options=pacsv.ReadOptions(
                    column_names=COLUMNS, use_threads=False, block_size=max(text.size, 1)
                ),
                parse_options=pacsv.ParseOptions(
                    invalid_row_handler=on_invalid, newlines_in_values=True
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(COLUMNS, pa.string()), strings_can_be_null=False
                ),
            )
        except pa.ArrowInvalid as e:
            if "UTF8" in str(e).upper():
                line = self._first_undecodable_line(text, lines, starts, ends - starts)
                raise SourceError(
                    f"{self.path}: line {line} is not UTF-8 text; re-encode the file as UTF-8"
                ) from e
            raise SourceError(f"{self.path}: cannot parse as CSV: {e}") from e
        if table.num_rows + len(invalid) != rows.first_line.size:
            first = self.lines_done + int(rows.first_line[0]) + 1
            raise SourceError(
                f"{self.path}: lines {first:,}-{self.lines_done + rows.carry_from:,}: "
                f"{rows.first_line.size:,} rows were delimited but the CSV parser found "
                f"{table.num_rows + len(invalid):,}; please report this file"
            )
        parsed = np.ones(rows.first_line.size, dtype=bool)
        dropped = []
        for index, actual, expected in invalid:
            parsed[index] = False
            dropped.append((index, f"{actual} fields, expected {expected}"))
        # a field over MAX_FIELD_CHARS characters needs a row over that many bytes: rare
        too_long = _too_long(table) if (ends - starts).max() > MAX_FIELD_CHARS else None
        if too_long is not None:
            kept = np.flatnonzero(parsed)
            for index in kept[too_long].tolist():
                dropped.append((index, f"a field over {MAX_FIELD_CHARS:,} characters"))
            parsed[kept[too_long]] = False
            table = table.filter(pa.array(~too_long))
        self.report.continuation_lines += int((rows.n_lines[parsed] - 1).sum())
        self.writer.write(table)
        self.report.rows_written = self.writer.rows
        return [(int(rows.first_line[i]), int(rows.n_lines[i]), what) for i, what in dropped]

    def _drop(self, buf: np.ndarray, lines: Lines, first: int, count: int, what: str) -> None:
        number = self.lines_done + first + 1
        span = f"line {number}" if count == 1 else f"lines {number}-{number + count - 1}"
        text = buf[lines.starts[first] : lines.ends[first + count - 1]].tobytes()
        self._malformed(f"{span}: {what}", text, count)

    def _malformed(self, where: str, text: bytes, lines: int) -> None:
        self.report.record_malformed(where, lines)
        if self.logged < LOGGED_MALFORMED:
            self.logged += 1
            shown = text.decode("utf-8", "replace")[:120]
            self.log(f"{self.path}: skipping malformed {where}: {shown!r}")

    def _first_undecodable_line(
        self, text: np.ndarray, lines: Lines, starts: np.ndarray, lengths: np.ndarray
    ) -> int:
        """Only on the error path: the physical line of the first byte that is not UTF-8."""
        try:
            text.tobytes().decode("utf-8")
        except UnicodeDecodeError as e:
            row_ends = np.cumsum(lengths)
            row = int(np.searchsorted(row_ends, e.start, side="right"))
            offset = int(starts[row]) + e.start - int(row_ends[row] - lengths[row])
            return self.lines_done + int(np.searchsorted(lines.ends, offset, side="right")) + 1
        return self.lines_done + 1


def _first_line_break(data: bytes) -> int:
    """Offset just past the first line break, or -1."""
    ends = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
    if not ends:
        return -1
    i = min(ends)
    return i + 2 if data[i : i + 2] == b"\r\n" else i + 1


def _too_long(table: pa.Table) -> np.ndarray | None:
    """Mask of rows with a field over MAX_FIELD_CHARS characters, or None if there is none."""
    mask = None
    for name in COLUMNS:
        over = pc.greater(pc.utf8_length(table.column(name)), MAX_FIELD_CHARS)
        mask = over if mask is None else pc.or_(mask, over)
    if mask is None or not pc.any(mask).as_py():
        return None
    return mask.to_numpy(zero_copy_only=False)


def read_kaggle_csv(path: Path, writer: CanonicalWriter, report: IngestReport, log: Log) -> None:
    KaggleCsvReader(path, writer, report, log).run()
