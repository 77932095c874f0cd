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
    ProgressLog,
    SourceError,
)

PARQUET_MAGIC = b"PAR1"


def read_canonical_parquet(
    path: Path, writer: CanonicalWriter, report: IngestReport, log: ProgressLog
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
    # The file's own row_id order is the playlist order; rows are renumbered densely in it.
    row_ids = pq.read_table(path, columns=["row_id"]).column("row_id")
    if row_ids.null_count or (len(row_ids) > 1 and not (np.diff(row_ids.to_numpy()) > 0).all()):
        raise SourceError(f"{path}: row_id must be non-null and strictly increasing in file order")
    for batch in parquet.iter_batches(columns=CANONICAL_SCHEMA.names, batch_size=500_000):
        writer.write(batch)
    report.files.append(str(path))
    log(f"{path}: {writer.rows:,} rows")
