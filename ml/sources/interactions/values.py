"""Source columns to typed values, vectorised; a value that does not parse fails the ingest with
the file, line (or row) and column it came from.

Timestamps are epoch seconds (numbers, or text holding numbers) or dates and datetimes as text
(ISO 8601: ``2018-09-20``, ``2018-09-20 10:00:00``, ``2018-09-20T10:00:00Z``, ``...+02:00``; zoned
values are converted to UTC), or another text layout given as a ``strptime`` format. The first
non-blank value of a text column decides between numbers and dates for the whole file.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from ml.sources.canonical import SourceError

Locate = Callable[[int], str]  # index within a batch -> "path: line 17"
TimestampKind = Literal["epoch", "datetime"]

NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
ZONE = r":\d{2}(\.\d+)?(Z|[+-]\d{2}(:?\d{2})?)$"  # a zone after the time, not a date's "-20"
LATEST_EPOCH = datetime(2300, 1, 1, tzinfo=UTC).timestamp()  # later: milliseconds, most likely
NAIVE, ZONED = pa.timestamp("us"), pa.timestamp("us", tz="UTC")


def texts(values: pa.Array) -> pa.Array:
    """Trimmed strings; blank becomes null."""
    text = pc.utf8_trim_whitespace(values.cast(pa.string()))
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def ids(values: pa.Array) -> pa.Array:
    """User and item ids as the source has them (integers become their decimal text)."""
    return values.cast(pa.string())


def ratings(values: pa.Array, locate: Locate, column: str) -> pa.Array:
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        return values.cast(pa.float64())
    text = texts(values)
    bad = _first(pc.and_(text.is_valid(), pc.invert(pc.match_substring_regex(text, NUMBER))))
    if bad is not None:
        raise SourceError(f"{locate(bad)}, column {column!r}: rating {text[bad]} is not a number")
    return text.cast(pa.float64())


class TimestampParser:
    """One per source column: remembers whether the file holds epoch seconds or dates."""

    def __init__(self, column: str, kind: TimestampKind | None = None, fmt: str | None = None):
        self.column = column
        self.kind = kind
        self.fmt = fmt

    def __call__(self, values: pa.Array, locate: Locate) -> pa.Array:
        kind = values.type
        if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            zoned = pa.types.is_timestamp(kind) and kind.tz is not None
            return values.cast(ZONED).cast(NAIVE) if zoned else values.cast(NAIVE)
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            return self._epoch(values.cast(pa.float64()), locate)
        text = texts(values)
        if self.fmt is not None:
            return self._formatted(text, locate)
        if self.kind is None and text.null_count < len(text):
            first = text.drop_null()[0].as_py()
            self.kind = "epoch" if pc.match_substring_regex(first, NUMBER).as_py() else "datetime"
        if self.kind == "epoch":
            is_number = pc.match_substring_regex(text, NUMBER)
            bad = _first(pc.and_(text.is_valid(), pc.invert(is_number)))
            if bad is not None:
                raise SourceError(
                    f"{locate(bad)}, column {self.column!r}: timestamp {text[bad]} is not a "
                    "number (epoch seconds, like the column's first value)"
                )
            return self._epoch(text.cast(pa.float64()), locate)
        return self._datetimes(text, locate)

    def _epoch(self, seconds: pa.Array, locate: Locate) -> pa.Array:
        too_large = pc.greater(pc.abs(seconds), LATEST_EPOCH)
        bad = _first(pc.or_(too_large, pc.invert(pc.is_finite(seconds))))
        if bad is not None:
            raise SourceError(
                f"{locate(bad)}, column {self.column!r}: timestamp {seconds[bad]} is not epoch "
                "seconds before 2300 (milliseconds?)"
            )
        micros = pc.round(pc.multiply(seconds, 1e6)).cast(pa.int64())
        return micros.cast(NAIVE)

    def _formatted(self, text: pa.Array, locate: Locate) -> pa.Array:
        parsed = pc.strptime(text, format=self.fmt, unit="us", error_is_null=True)
        bad = _first(pc.and_(text.is_valid(), parsed.is_null()))
        if bad is not None:
            raise SourceError(
                f"{locate(bad)}, column {self.column!r}: timestamp {text[bad]} does not match "
                f"the format {self.fmt!r}"
            )
        return parsed.cast(NAIVE)

    def _datetimes(self, text: pa.Array, locate: Locate) -> pa.Array:
        null = pa.scalar(None, pa.string())
        zoned = pc.fill_null(pc.match_substring_regex(text, ZONE), False)
        try:
            local = pc.if_else(zoned, null, text).cast(NAIVE)
            utc = pc.if_else(zoned, text, null).cast(ZONED).cast(NAIVE)
        except pa.ArrowInvalid:
            bad = next(i for i, value in enumerate(text) if not _parses(value))
            raise SourceError(
                f"{locate(bad)}, column {self.column!r}: timestamp {text[bad]} is not a date or "
                "datetime (expected e.g. 2018-09-20, 2018-09-20 10:00:00 or epoch seconds like "
                "the column's first value; another layout needs timestamp_format)"
            ) from None
        return pc.coalesce(local, utc)


def _parses(value: pa.Scalar) -> bool:
    if not value.is_valid:
        return True
    is_zoned = pc.match_substring_regex(value, ZONE).as_py()
    try:
        pa.array([value.as_py()]).cast(ZONED if is_zoned else NAIVE)
    except pa.ArrowInvalid:
        return False
    return True


def _first(mask: pa.Array) -> int | None:
    """Index of the first true entry (nulls are false)."""
    found = pc.index(pc.fill_null(mask, False), True).as_py()
    return None if found < 0 else found
