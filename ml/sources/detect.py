"""Format detection from path and content, and the one entry point: ``ingest``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from ml.sources.canonical import CanonicalWriter, IngestReport, ProgressLog, SourceError
from ml.sources.kaggle import EXPECTED_HEADER, is_kaggle_header, read_header, read_kaggle_csv
from ml.sources.mpd import SLICE_GLOB, read_mpd
from ml.sources.parquet import PARQUET_MAGIC, read_canonical_parquet
from ml.sources.synthetic import SyntheticSpec, write_synthetic
from ml.sources.yes import is_yes_folder, read_yes

EXPECTED_FORMATS = (
    "a Kaggle spotify_dataset.csv, an MPD mpd.slice.*.json file or folder, a Yes.com folder "
    "(train.txt + song_hash.txt), or a canonical Parquet file "
    "(row_id, user_id, artist, track, playlist)"
)


class SourceFormat(StrEnum):
    KAGGLE_CSV = "kaggle_csv"
    MPD_JSON = "mpd_json"
    YES_COM = "yes_com"
    CANONICAL_PARQUET = "canonical_parquet"
    SYNTHETIC = "synthetic"


def _sniff_file(path: Path) -> SourceFormat:
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: the file is empty; expected {EXPECTED_FORMATS}")
    with path.open("rb") as f:
        head = f.read(4096)
    if head.startswith(PARQUET_MAGIC):
        return SourceFormat.CANONICAL_PARQUET
    if head.lstrip()[:1] in (b"{", b"["):
        _check_mpd_head(path, head)
        return SourceFormat.MPD_JSON
    header = read_header(path)
    if is_kaggle_header(header):
        return SourceFormat.KAGGLE_CSV
    if path.suffix.lower() == ".csv":
        raise SourceError(
            f"{path}: CSV header is {header}; expected {EXPECTED_HEADER} "
            "(the Kaggle Spotify Playlists layout)"
        )
    raise SourceError(f"{path}: unknown format; expected {EXPECTED_FORMATS}")


def _check_mpd_head(path: Path, head: bytes) -> None:
    """Cheap check before the full parse: MPD slices open with "info" or "playlists"."""
    text = head.decode("utf-8", errors="replace")
    if '"playlists"' not in text and '"info"' not in text:
        raise SourceError(
            f"{path}: JSON that is not a Million Playlist Dataset slice "
            "(expected an object with 'info' and 'playlists')"
        )


def detect_format(source: Path | None) -> SourceFormat:
    """Decide the format of a file or folder; raise ``SourceError`` naming the path if unusable."""
    if source is None:
        return SourceFormat.SYNTHETIC
    if not source.exists():
        raise SourceError(f"{source}: no such file or folder")
    if source.is_dir():
        if is_yes_folder(source):
            return SourceFormat.YES_COM
        if any(source.glob(SLICE_GLOB)):
            return SourceFormat.MPD_JSON
        found = sorted(p.name for p in source.iterdir())[:10]
        raise SourceError(
            f"{source}: folder has no usable file (found {found}); expected an MPD folder of "
            f"{SLICE_GLOB} or a Yes.com folder with train.txt and song_hash.txt"
        )
    return _sniff_file(source)


def ingest(
    source: Path | None,
    output: Path,
    *,
    synthetic: SyntheticSpec | None = None,
    log: ProgressLog = lambda _: None,
) -> IngestReport:
    """Read any supported source into the canonical Parquet at ``output``.

    ``source=None`` generates synthetic playlists. The output is replaced only on success.
    """
    fmt = detect_format(source)
    report = IngestReport(source=str(source or "synthetic"), format=fmt.value, output=str(output))
    with CanonicalWriter(output, log=log) as writer:
        report.stale_temporaries_removed = [str(p) for p in writer.stale_removed]
        if fmt is SourceFormat.SYNTHETIC:
            write_synthetic(synthetic or SyntheticSpec(), writer, report)
        elif fmt is SourceFormat.KAGGLE_CSV:
            read_kaggle_csv(source, writer, report, log)
        elif fmt is SourceFormat.MPD_JSON:
            paths = sorted(source.glob(SLICE_GLOB)) if source.is_dir() else [source]
            read_mpd(paths, writer, report, log)
        elif fmt is SourceFormat.YES_COM:
            read_yes(source, writer, report, log)
        else:
            read_canonical_parquet(source, writer, report, log)
        if writer.rows == 0:
            raise SourceError(f"{source}: no playlist rows found; expected {EXPECTED_FORMATS}")
        report.rows_written = writer.rows
    return report
