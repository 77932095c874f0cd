"""Canonical Parquet: already in the raw schema; validated and re-numbered streaming."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ml.sources.canonical import (
    CANONICAL_SCHEMA,
    CanonicalWriter,
    IngestReport,
    Log,
    SourceError,
)

PARQUET_MAGIC = b"PAR1"


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_string_view(kind)
        or pa.types.is_null(kind)  # a column with no value at all
    )


def check_column_types(path: Path, schema: pa.Schema) -> None:
    """row_id any integer, the four names text: else a SourceError naming each wrong column."""
    wrong = []
    for column in CANONICAL_SCHEMA:
        actual = schema.field(column.name).type
        if column.name == "row_id":
            if not pa.types.is_integer(actual):
                wrong.append(f"row_id is {actual}, expected an integer ({column.type})")
        elif not _is_text(actual):
            wrong.append(f"{column.name} is {actual}, expected text ({column.type})")
    if wrong:
        raise SourceError(f"{path}: wrong column types: {'; '.join(wrong)}")


def read_canonical_parquet(
    path: Path, writer: CanonicalWriter, report: IngestReport, log: Log
) -> None:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise SourceError(f"{path}: not a readable Parquet file ({e})") from e
    names = set(parquet.schema_arrow.names)
    missing = [c for c in CANONICAL_SCHEMA.names if c not in names]
    if missing:
        raise SourceError(
            f"{path}: Parquet lacks columns {missing}; the canonical schema is "
            f"{', '.join(f'{f.name} {f.type}' for f in CANONICAL_SCHEMA)}"
        )
    check_column_types(path, parquet.schema_arrow)
    # The file's own row_id order is the playlist order; rows are renumbered densely in it.
    previous = None
    for batch in parquet.iter_batches(columns=CANONICAL_SCHEMA.names, batch_size=500_000):
        if batch.num_rows == 0:
            continue
        row_ids = batch.column("row_id")
        values = row_ids.to_numpy(zero_copy_only=False)
        if row_ids.null_count or not (
            (np.diff(values) > 0).all() and (previous is None or values[0] > previous)
        ):
            raise SourceError(
                f"{path}: row_id must be non-null and strictly increasing in file order"
            )
        previous = values[-1]
        writer.write(batch)
    report.files.append(str(path))
    log(f"{path}: {writer.rows:,} rows")
