"""Format detection from path and content, and the one entry point: ``ingest``.

A folder holds one data set: a Yes.com folder, MPD slice files, or one CSV or Parquet file (the
Kaggle download unzipped, say). Files that are no data (a README, a license, checksums) are
listed in the report as ignored. A folder that mixes formats is refused, naming what it holds:
playlists of different sources in one table would share nothing but the track names, and such a
folder is far more often a mistake than a plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from ml.progress import no_log
from ml.sources.canonical import CanonicalWriter, IngestReport, Log, SourceError
from ml.sources.files import compression_of, read_head, uncompressed_name
from ml.sources.kaggle import EXPECTED_HEADER, is_kaggle_header, read_header, read_kaggle_csv
from ml.sources.mpd import is_slice_file, read_mpd
from ml.sources.parquet import PARQUET_MAGIC, read_canonical_parquet
from ml.sources.synthetic import SyntheticSpec, write_synthetic
from ml.sources.yes import PLAYLIST_FILES, SONG_HASH, is_yes_folder, read_yes

EXPECTED_FORMATS = (
    "a Kaggle spotify_dataset.csv, an MPD mpd.slice.*.json file or folder, a Yes.com folder "
    "(train.txt + song_hash.txt), or a canonical Parquet file "
    "(row_id, user_id, artist, track, playlist); CSV and JSON may be gzip, bzip2, zstd or xz "
    "compressed"
)
FOLDER_KINDS = ("Yes.com", "MPD slices", "CSV", "Parquet")


class SourceFormat(StrEnum):
    KAGGLE_CSV = "kaggle_csv"
    MPD_JSON = "mpd_json"
    YES_COM = "yes_com"
    CANONICAL_PARQUET = "canonical_parquet"
    SYNTHETIC = "synthetic"


@dataclass
class DetectedSource:
    format: SourceFormat
    path: Path | None  # the file to read, or the folder for Yes.com and MPD
    slices: list[Path] = field(default_factory=list)  # MPD slice files
    ignored: list[str] = field(default_factory=list)  # files in the folder that are not read


def _sniff_file(path: Path) -> SourceFormat:
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: the file is empty; expected {EXPECTED_FORMATS}")
    head = read_head(path)
    codec = compression_of(path)
    if not head:
        raise SourceError(f"{path}: the {codec} file holds nothing; expected {EXPECTED_FORMATS}")
    if head.startswith(PARQUET_MAGIC):
        if codec:
            raise SourceError(
                f"{path}: a {codec}-compressed Parquet file; Parquet is compressed inside "
                f"already: decompress it first (e.g. `{_decompress_command(codec)} {path.name}`)"
            )
        return SourceFormat.CANONICAL_PARQUET
    if head.lstrip()[:1] in (b"{", b"["):
        _check_mpd_head(path, head)
        return SourceFormat.MPD_JSON
    header = read_header(path)
    if is_kaggle_header(header):
        return SourceFormat.KAGGLE_CSV
    if uncompressed_name(path).lower().endswith(".csv"):
        raise SourceError(
            f"{path}: CSV header is {header}; expected {EXPECTED_HEADER} "
            "(the Kaggle Spotify Playlists layout)"
        )
    raise SourceError(f"{path}: unknown format; expected {EXPECTED_FORMATS}")


def _decompress_command(codec: str) -> str:
    return {"gzip": "gunzip", "bz2": "bunzip2", "zstd": "unzstd", "xz": "unxz"}[codec]


def _check_mpd_head(path: Path, head: bytes) -> None:
    """Cheap check before the full parse: MPD slices open with "info" or "playlists"."""
    text = head.decode("utf-8", errors="replace")
    if '"playlists"' not in text and '"info"' not in text:
        raise SourceError(
            f"{path}: JSON that is not a Million Playlist Dataset slice "
            "(expected an object with 'info' and 'playlists')"
        )


def _folder_kinds(folder: Path) -> tuple[dict[str, list[Path]], list[str]]:
    """The data files of a folder by kind, and the names of the files that are none."""
    kinds: dict[str, list[Path]] = {kind: [] for kind in FOLDER_KINDS}
    ignored = []
    yes = is_yes_folder(folder)
    for path in sorted(folder.iterdir()):
        name = uncompressed_name(path).lower()
        if path.name.startswith("."):
            continue
        if path.is_dir():
            ignored.append(f"{path.name}/")
        elif yes and path.name in (*PLAYLIST_FILES, SONG_HASH):
            kinds["Yes.com"].append(path)
        elif is_slice_file(path):
            kinds["MPD slices"].append(path)
        elif name.endswith(".csv"):
            kinds["CSV"].append(path)
        elif name.endswith(".parquet"):
            kinds["Parquet"].append(path)
        else:
            ignored.append(path.name)
    return {kind: paths for kind, paths in kinds.items() if paths}, ignored


def _describe(kinds: dict[str, list[Path]]) -> str:
    return "; ".join(
        f"{kind}: {', '.join(p.name for p in paths[:3])}"
        + (f" and {len(paths) - 3:,} more" if len(paths) > 3 else "")
        for kind, paths in kinds.items()
    )


def _detect_folder(folder: Path) -> DetectedSource:
    kinds, ignored = _folder_kinds(folder)
    if not kinds:
        raise SourceError(
            f"{folder}: folder has no usable file (found {ignored[:10]}); expected an MPD "
            "folder of mpd.slice.*.json, a Yes.com folder with train.txt and song_hash.txt, or "
            "a folder with one Kaggle CSV"
        )
    if len(kinds) > 1:
        raise SourceError(
            f"{folder}: the folder mixes formats ({_describe(kinds)}); a folder must hold one "
            "data set: move the others out, or point at one file"
        )
    ((kind, paths),) = kinds.items()
    if kind == "Yes.com":
        return DetectedSource(SourceFormat.YES_COM, folder, ignored=ignored)
    if kind == "MPD slices":
        return DetectedSource(SourceFormat.MPD_JSON, folder, slices=paths, ignored=ignored)
    if len(paths) > 1:
        raise SourceError(
            f"{folder}: the folder holds {len(paths)} {kind} files ({_describe(kinds)}); "
            "point at the one to ingest"
        )
    return DetectedSource(_sniff_file(paths[0]), paths[0], ignored=ignored)


def detect_source(source: Path | None) -> DetectedSource:
    """What to read and how; raise ``SourceError`` naming the path if unusable."""
    if source is None:
        return DetectedSource(SourceFormat.SYNTHETIC, None)
    if not source.exists():
        raise SourceError(f"{source}: no such file or folder")
    if source.is_dir():
        return _detect_folder(source)
    fmt = _sniff_file(source)
    return DetectedSource(fmt, source, slices=[source] if fmt is SourceFormat.MPD_JSON else [])


def detect_format(source: Path | None) -> SourceFormat:
    """Decide the format of a file or folder; raise ``SourceError`` naming the path if unusable."""
    return detect_source(source).format


def ingest(
    source: Path | None,
    output: Path,
    *,
    synthetic: SyntheticSpec | None = None,
    log: Log = no_log,
) -> IngestReport:
    """Read any supported source into the canonical Parquet at ``output``.

    ``source=None`` generates synthetic playlists. The output is replaced only on success.
    """
    found = detect_source(source)
    fmt, path = found.format, found.path
    report = IngestReport(
        source=str(source or "synthetic"),
        format=fmt.value,
        output=str(output),
        ignored_files=found.ignored,
    )
    if found.ignored:
        log(f"{source}: not data, ignored: {', '.join(found.ignored)}")
    with CanonicalWriter(output, log=log) as writer:
        report.stale_temporaries_removed = [str(p) for p in writer.stale_removed]
        if fmt is SourceFormat.SYNTHETIC:
            write_synthetic(synthetic or SyntheticSpec(), writer, report)
        elif fmt is SourceFormat.KAGGLE_CSV:
            read_kaggle_csv(path, writer, report, log)
        elif fmt is SourceFormat.MPD_JSON:
            read_mpd(found.slices, writer, report, log)
        elif fmt is SourceFormat.YES_COM:
            read_yes(path, writer, report, log)
        else:
            read_canonical_parquet(path, writer, report, log)
        if writer.rows == 0:
            raise SourceError(f"{source}: no playlist rows found; expected {EXPECTED_FORMATS}")
        report.rows_written = writer.rows
    return report
