"""MovieLens in its two common layouts.

RecBole atomic files: ``<name>.inter`` and optional ``<name>.item``, tab-separated, a typed header
(``user_id:token  item_id:token  rating:float  timestamp:float``); a ``token_seq`` field holds
space-separated tokens (``class:token_seq`` = genres). ``.user`` and other files are not read.

GroupLens' own files: ``u.data`` (``user <TAB> item <TAB> rating <TAB> timestamp``, no header),
optional ``u.item`` (latin-1, ``|``-separated: id, title, release date (01-Jan-1995), video release
date, IMDb URL, then one 0/1 flag per genre) and ``u.genre`` (``name|index``).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from ml.sources.canonical import SourceError
from ml.sources.interactions.delimited import DelimitedFile
from ml.sources.interactions.mapped import ColumnMapping, read_delimited_interactions
from ml.sources.interactions.table import InteractionsReport, InteractionsWriter, Log

RECBOLE_TITLE = ("movie_title", "title", "item_name", "name")
RECBOLE_YEAR = ("release_year", "year")
RECBOLE_GENRES = ("class", "genre", "genres", "categories")
# u.genre's names in flag order, for a folder without u.genre.
GROUPLENS_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip


def recbole_header(path: Path) -> list[tuple[str, str]]:
    """(name, type) of every field of line 1."""
    with path.open("rb") as f:
        first = f.readline()
    try:
        fields = first.decode("utf-8-sig").rstrip("\r\n").split("\t")
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}: line 1 is not UTF-8 text ({e.reason})") from e
    header = []
    for field in fields:
        name, colon, kind = field.strip().partition(":")
        if not colon or not name:
            raise SourceError(
                f"{path}: line 1: field {field!r} is not a RecBole 'name:type' header "
                "(e.g. user_id:token)"
            )
        header.append((name, kind))
    return header


def read_recbole(
    inter: Path, writer: InteractionsWriter, report: InteractionsReport, log: Log
) -> None:
    header = recbole_header(inter)
    names = [name for name, _ in header]
    missing = [c for c in ("user_id", "item_id", "timestamp") if c not in names]
    if missing:
        raise SourceError(
            f"{inter}: line 1: no field {', '.join(map(repr, missing))} in the RecBole header "
            f"{names}; user-item interactions need user_id, item_id and timestamp"
        )
    mapping = ColumnMapping(rating="rating" if "rating" in names else None)
    spec = DelimitedFile(inter, "\t", names, header_lines=1, use=mapping.columns, quoted=False)
    read_delimited_interactions(spec, mapping, writer, report, log, timestamp_kind="epoch")
    item_file = inter.with_suffix(".item")
    if item_file.is_file():
        read_recbole_items(item_file, writer, report)


def read_recbole_items(path: Path, writer: InteractionsWriter, report: InteractionsReport) -> None:
    header = recbole_header(path)
    names = [name for name, _ in header]
    if "item_id" not in names:
        raise SourceError(f"{path}: line 1: no field 'item_id' in the RecBole header {names}")
    title = next((names.index(n) for n in RECBOLE_TITLE if n in names), None)
    year = next((names.index(n) for n in RECBOLE_YEAR if n in names), None)
    genres = next((names.index(n) for n in RECBOLE_GENRES if n in names), None)
    rows: dict[str, list] = {"item_id": [], "title": [], "year": [], "genres": []}
    for number, fields in _lines(path, "utf-8", "\t", skip=1):
        if len(fields) != len(names):
            raise SourceError(f"{path}: line {number}: {len(fields)} fields, expected {len(names)}")
        rows["item_id"].append(_text(fields, names.index("item_id")))
        rows["title"].append(_text(fields, title))
        rows["year"].append(_year(_text(fields, year) or "", report))
        rows["genres"].append(_text(fields, genres).split() if _text(fields, genres) else None)
    writer.write_items(pa.table(rows))
    report.files.append(str(path))


def read_grouplens(
    folder: Path, writer: InteractionsWriter, report: InteractionsReport, log: Log
) -> None:
    mapping = ColumnMapping(user="user", item="item", timestamp="timestamp", rating="rating")
    names = ["user", "item", "rating", "timestamp"]
    spec = DelimitedFile(folder / "u.data", "\t", names, header_lines=0, use=names, quoted=False)
    read_delimited_interactions(spec, mapping, writer, report, log, timestamp_kind="epoch")
    if (folder / "u.item").is_file():
        read_grouplens_items(folder, writer, report)


def read_grouplens_items(
    folder: Path, writer: InteractionsWriter, report: InteractionsReport
) -> None:
    genre_names = GROUPLENS_GENRES
    if (folder / "u.genre").is_file():
        genre_names = [
            fields[0] for _, fields in _lines(folder / "u.genre", "latin-1", "|") if fields[0]
        ]
    path = folder / "u.item"
    expected = 5 + len(genre_names)
    rows: dict[str, list] = {"item_id": [], "title": [], "year": [], "genres": []}
    for number, fields in _lines(path, "latin-1", "|"):
        if len(fields) != expected:
            raise SourceError(
                f"{path}: line {number}: {len(fields)} '|'-separated fields, expected {expected} "
                f"(id, title, release date, video release date, URL, {len(genre_names)} genres)"
            )
        flags = fields[5:]
        if any(flag not in ("0", "1") for flag in flags):
            raise SourceError(f"{path}: line {number}: genre flags must be 0 or 1, got {flags}")
        rows["item_id"].append(_text(fields, 0))
        rows["title"].append(_text(fields, 1))
        rows["year"].append(_year(fields[2].strip()[-4:], report))  # 01-Jan-1995
        rows["genres"].append(
            [g for g, flag in zip(genre_names, flags, strict=True) if flag == "1"]
        )
    writer.write_items(pa.table(rows))
    report.files.append(str(path))


def _text(fields: list[str], index: int | None) -> str | None:
    """The trimmed field at ``index``; None for a blank field or a column the file lacks."""
    return (fields[index].strip() or None) if index is not None else None


def _year(text: str, report: InteractionsReport) -> int | None:
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    report.record_blanked("year")
    return None


def _lines(path: Path, encoding: str, delimiter: str, skip: int = 0):
    """(line number, fields) of every non-blank line after ``skip``."""
    try:
        with path.open(encoding=encoding) as f:
            for number, line in enumerate(f, start=1):
                line = line.rstrip("\r\n")
                if number > skip and line.strip():
                    yield number, line.split(delimiter)
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}: not {encoding} text ({e.reason} at byte {e.start})") from e
