"""Format detection and the one entry point for interactions: ``ingest_interactions``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from ml.progress import no_log
from ml.sources.canonical import SourceError
from ml.sources.interactions.mapped import (
    ColumnMapping,
    ItemColumns,
    csv_header,
    is_parquet,
    parquet_columns,
    read_items_csv,
    read_mapped,
)
from ml.sources.interactions.movielens import read_grouplens, read_recbole
from ml.sources.interactions.playlists import PLAYLIST_COLUMNS, read_playlist_parquet
from ml.sources.interactions.table import InteractionsReport, InteractionsWriter, Log

EXPECTED = (
    "a RecBole .inter file (or a folder with one), a GroupLens folder or file u.data, the "
    "canonical playlist Parquet (row_id, user_id, artist, track, playlist), or a CSV/Parquet "
    "with a column mapping (user, item, timestamp, optional rating)"
)


class InteractionsFormat(StrEnum):
    RECBOLE = "recbole"
    GROUPLENS = "grouplens"
    PLAYLIST_PARQUET = "playlist_parquet"
    MAPPED = "mapped"


def detect_interactions_format(source: Path, mapping: ColumnMapping | None) -> InteractionsFormat:
    if not source.exists():
        raise SourceError(f"{source}: no such file or folder")
    if source.is_dir():
        inter = sorted(source.glob("*.inter"))
        if len(inter) == 1:
            return InteractionsFormat.RECBOLE
        if len(inter) > 1:
            names = [p.name for p in inter]
            raise SourceError(f"{source}: several .inter files {names}; pass the one to read")
        if (source / "u.data").is_file():
            return InteractionsFormat.GROUPLENS
        found = sorted(p.name for p in source.iterdir())[:10]
        raise SourceError(
            f"{source}: no interactions file in the folder (found {found}); expected {EXPECTED}"
        )
    if source.stat().st_size == 0:
        raise SourceError(f"{source}: the file is empty; expected {EXPECTED}")
    if source.suffix == ".inter":
        return InteractionsFormat.RECBOLE
    if source.name == "u.data":
        return InteractionsFormat.GROUPLENS
    if mapping is not None:
        return InteractionsFormat.MAPPED
    columns = parquet_columns(source) if is_parquet(source) else csv_header(source)
    if is_parquet(source) and all(c in columns for c in PLAYLIST_COLUMNS):
        return InteractionsFormat.PLAYLIST_PARQUET
    if all(c in columns for c in ColumnMapping().columns):
        return InteractionsFormat.MAPPED
    raise SourceError(
        f"{source}: columns {columns[:20]} are not the canonical user_id, item_id, timestamp; "
        f"pass a column mapping (user=..., item=..., timestamp=...). Expected {EXPECTED}"
    )


def ingest_interactions(
    source: Path,
    output_dir: Path,
    *,
    mapping: ColumnMapping | None = None,
    items: Path | None = None,
    item_columns: ItemColumns | None = None,
    log: Log = no_log,
) -> InteractionsReport:
    """Read interactions (and item metadata) into ``output_dir``/interactions.parquet and
    items.parquet; both are replaced only when the whole source was read."""
    fmt = detect_interactions_format(source, mapping)
    if items is not None and fmt is not InteractionsFormat.MAPPED:
        raise SourceError(
            f"{items}: a separate items file goes with a mapped CSV/Parquet only; "
            f"{source} is {fmt.value} and brings its own"
        )
    report = InteractionsReport(source=str(source), format=fmt.value, output_dir=str(output_dir))
    with InteractionsWriter(output_dir, report, log) as writer:
        if fmt is InteractionsFormat.RECBOLE:
            inter = source if source.is_file() else next(source.glob("*.inter"))
            read_recbole(inter, writer, report, log)
        elif fmt is InteractionsFormat.GROUPLENS:
            read_grouplens(source if source.is_dir() else source.parent, writer, report, log)
        elif fmt is InteractionsFormat.PLAYLIST_PARQUET:
            read_playlist_parquet(source, writer, report, log)
        else:
            read_mapped(source, mapping or ColumnMapping(), writer, report, log)
            if items is not None:
                read_items_csv(items, item_columns or ItemColumns(), writer)
                report.files.append(str(items))
        if writer.rows == 0:
            raise SourceError(f"{source}: no interaction rows found; expected {EXPECTED}")
    log(report.summary())
    return report
