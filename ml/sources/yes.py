"""Cornell Yes.com radio playlists: a folder with train.txt (+ optional test.txt) and song_hash.txt.

Playlist files: line 1 holds external song ids, line 2 appearance counts, every later line one
playlist of integer song ids, each followed by a space. song_hash.txt maps
``id <TAB> title <TAB> artist``; titles escape ``/`` as ``\\/``.
"""

from __future__ import annotations

from pathlib import Path

from ml.sources.canonical import CanonicalWriter, IngestReport, Log, SourceError

PLAYLIST_FILES = ("train.txt", "test.txt")
SONG_HASH = "song_hash.txt"
USER_ID = "yes.com"
BATCH_ROWS = 200_000


def is_yes_folder(folder: Path) -> bool:
    return (folder / "train.txt").is_file() and (folder / SONG_HASH).is_file()


def read_song_hash(path: Path) -> list[tuple[str, str]]:
    """Index -> (artist, title)."""
    songs: list[tuple[str, str]] = []
    with path.open("r", encoding="utf-8", errors="strict") as f:
        for number, line in enumerate(f, start=1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3 or not parts[0].strip().isdigit():
                raise SourceError(f"{path}: line {number}: expected 'id<TAB>title<TAB>artist'")
            if int(parts[0]) != len(songs):
                raise SourceError(f"{path}: line {number}: id {parts[0]} out of sequence")
            title, artist = parts[1].replace("\\/", "/"), parts[2].replace("\\/", "/")
            songs.append((artist, title))
    return songs


def read_yes(folder: Path, writer: CanonicalWriter, report: IngestReport, log: Log) -> None:
    song_hash = folder / SONG_HASH
    try:
        songs = read_song_hash(song_hash)
    except UnicodeDecodeError as e:
        raise SourceError(f"{song_hash}: not UTF-8 text ({e.reason})") from e
    for name in PLAYLIST_FILES:
        path = folder / name
        if not path.is_file():
            continue
        split = name.removesuffix(".txt")
        batch: list[tuple[str, str, str, str]] = []
        with path.open("r", encoding="ascii", errors="strict") as f:
            try:
                for number, line in enumerate(f, start=1):
                    if number <= 2:  # external ids, appearance counts
                        continue
                    playlist = f"{split}:{number - 2:06d}"
                    for token in line.split():
                        if not token.isdigit() or int(token) >= len(songs):
                            raise SourceError(
                                f"{path}: line {number}: song id {token!r} is not in "
                                f"song_hash.txt (0..{len(songs) - 1})"
                            )
                        artist, title = songs[int(token)]
                        batch.append((USER_ID, artist, title, playlist))
                    if len(batch) >= BATCH_ROWS:
                        writer.write_rows(batch)
                        batch = []
            except UnicodeDecodeError as e:
                raise SourceError(f"{path}: not a Yes.com playlist file ({e.reason})") from e
        writer.write_rows(batch)
        report.files.append(str(path))
        log(f"{path}: {writer.rows:,} rows so far")
