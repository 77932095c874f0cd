"""Any CSV or Parquet of interactions, given which columns hold the user, item and timestamp.

H&M's ``transactions_train.csv`` (``t_dat,customer_id,article_id,price,sales_channel_id``) is
``ColumnMapping(user="customer_id", item="article_id", timestamp="t_dat")``: dates become
midnight UTC, ``article_id`` keeps its leading zero (every CSV field is read as text). An optional
items file maps ``ItemColumns(item=..., title=...)``, e.g. H&M's ``articles.csv`` with
``item="article_id", title="prod_name"``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ml.sources.canonical import SourceError
from ml.sources.interactions.delimited import DelimitedFile, stream_delimited
from ml.sources.interactions.table import (
    PAYLOAD_SCHEMA,
    InteractionsReport,
    InteractionsWriter,
    Log,
)
from ml.sources.interactions.values import Locate, TimestampKind, TimestampParser, ids, ratings
from ml.sources.kaggle import read_header as csv_header
from ml.sources.parquet import PARQUET_MAGIC

PARQUET_BATCH_ROWS = 500_000


@dataclass(frozen=True)
class ColumnMapping:
    user: str = "user_id"
    item: str = "item_id"
    timestamp: str = "timestamp"
    rating: str | None = None
    # A strptime layout for text timestamps that are neither numbers nor ISO 8601 ("%d/%m/%Y").
    timestamp_format: str | None = None

    @property
    def columns(self) -> list[str]:
        return [c for c in (self.user, self.item, self.timestamp, self.rating) if c is not None]


@dataclass(frozen=True)
class ItemColumns:
    item: str = "item_id"
    title: str = "title"


def is_parquet(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == PARQUET_MAGIC


def parquet_columns(path: Path) -> list[str]:
    try:
        return pq.ParquetFile(path).schema_arrow.names
    except (pa.ArrowInvalid, OSError) as e:
        raise SourceError(f"{path}: not a readable Parquet file ({e})") from e


def require_columns(path: Path, found: list[str], wanted: list[str], where: str) -> None:
    missing = [c for c in wanted if c not in found]
    if missing:
        raise SourceError(
            f"{path}: {where}: no column {', '.join(map(repr, missing))} (found {found}); "
            "map the columns with user=..., item=..., timestamp=..."
        )


def to_payload(
    batch: pa.RecordBatch | pa.Table,
    locate: Locate,
    mapping: ColumnMapping,
    timestamps: TimestampParser,
) -> pa.Table:
    """The source's mapped columns as the canonical typed payload."""
    rating = (
        ratings(batch.column(mapping.rating), locate, mapping.rating)
        if mapping.rating is not None
        else pa.nulls(batch.num_rows, pa.float64())
    )
    columns = [
        ids(batch.column(mapping.user)),
        ids(batch.column(mapping.item)),
        timestamps(batch.column(mapping.timestamp), locate),
        rating,
    ]
    return pa.Table.from_arrays(columns, schema=PAYLOAD_SCHEMA)


def read_delimited_interactions(
    spec: DelimitedFile,
    mapping: ColumnMapping,
    writer: InteractionsWriter,
    report: InteractionsReport,
    log: Log,
    timestamp_kind: TimestampKind | None = None,
) -> None:
    timestamps = TimestampParser(mapping.timestamp, timestamp_kind, mapping.timestamp_format)
    for batch, locate in stream_delimited(spec, report, log):
        writer.write(to_payload(batch, locate, mapping, timestamps))


def read_mapped(
    path: Path,
    mapping: ColumnMapping,
    writer: InteractionsWriter,
    report: InteractionsReport,
    log: Log,
) -> None:
    """A CSV (header line, comma-separated, quoted fields) or a Parquet file."""
    if is_parquet(path):
        require_columns(path, parquet_columns(path), mapping.columns, "Parquet schema")
        timestamps = TimestampParser(mapping.timestamp, fmt=mapping.timestamp_format)
        for batch, locate in _parquet_batches(path, mapping.columns):
            writer.write(to_payload(batch, locate, mapping, timestamps))
        report.files.append(str(path))
        return
    header = csv_header(path)
    # Header names are matched without case, quotes or stray spaces, as normalize_header reads.
    lowered = replace(
        mapping,
        user=mapping.user.lower(),
        item=mapping.item.lower(),
        timestamp=mapping.timestamp.lower(),
        rating=mapping.rating.lower() if mapping.rating else None,
    )
    require_columns(path, header, lowered.columns, "line 1 (header)")
    spec = DelimitedFile(path, ",", header, header_lines=1, use=lowered.columns)
    read_delimited_interactions(spec, lowered, writer, report, log)


def _parquet_batches(path: Path, columns: list[str]) -> Iterator[tuple[pa.RecordBatch, Locate]]:
    start = 0
    for batch in pq.ParquetFile(path).iter_batches(columns=columns, batch_size=PARQUET_BATCH_ROWS):

        def locate(i: int, start: int = start) -> str:
            return f"{path}: row {start + i + 1}"

        yield batch, locate
        start += batch.num_rows


def read_items_csv(path: Path, columns: ItemColumns, writer: InteractionsWriter) -> None:
    """A CSV of item metadata: the id and title columns (small enough to read in Python)."""
    header = csv_header(path)
    wanted = [columns.item.lower(), columns.title.lower()]
    require_columns(path, header, wanted, "line 1 (header)")
    item_at, title_at = header.index(wanted[0]), header.index(wanted[1])
    items, titles = [], []
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        for fields in reader:
            if len(fields) != len(header):
                raise SourceError(
                    f"{path}: line {reader.line_num}: {len(fields)} fields, expected {len(header)}"
                )
            items.append(fields[item_at].strip() or None)
            titles.append(fields[title_at].strip() or None)
    writer.write_items(pa.table({"item_id": items, "title": titles}))
