"""Spotify Million Playlist Dataset: one ``mpd.slice.*.json`` file or a folder of them.

MPD has no users: each playlist's ``pid`` becomes its owner (``user_id = "mpd:<pid>"``), so two
playlists that share a name stay apart. Order within a playlist is ``pos``. One slice (1,000
playlists, ~30 MB) is parsed at a time.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ml.sources.canonical import CanonicalWriter, IngestReport, ProgressLog, SourceError

SLICE_GLOB = "mpd.slice.*.json"


def slice_sort_key(path: Path) -> tuple[int, str]:
    """mpd.slice.1000-1999.json sorts after mpd.slice.0-999.json (numeric, not text, order)."""
    match = re.search(r"mpd\.slice\.(\d+)-", path.name)
    return (int(match.group(1)) if match else -1, path.name)


def load_slice(path: Path) -> list[dict]:
    try:
        with path.open("r", encoding="utf-8") as f:
            document = json.load(f)
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except json.JSONDecodeError as e:
        raise SourceError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from e
    playlists = document.get("playlists") if isinstance(document, dict) else None
    if not isinstance(playlists, list):
        found = sorted(document)[:10] if isinstance(document, dict) else type(document).__name__
        raise SourceError(
            f"{path}: not a Million Playlist Dataset slice: expected an object with a "
            f"'playlists' list (found: {found})"
        )
    return playlists


def slice_rows(path: Path, playlists: list[dict]) -> list[tuple[str, str, str, str]]:
    rows = []
    for index, playlist in enumerate(playlists):
        if not isinstance(playlist, dict) or "pid" not in playlist or "tracks" not in playlist:
            raise SourceError(
                f"{path}: playlist #{index} is not an MPD playlist (needs 'pid' and 'tracks')"
            )
        user = f"mpd:{playlist['pid']}"
        name = str(playlist.get("name", ""))
        try:
            tracks = sorted(playlist["tracks"], key=lambda t: int(t["pos"]))
            rows.extend((user, t["artist_name"], t["track_name"], name) for t in tracks)
        except (KeyError, TypeError, ValueError) as e:
            raise SourceError(
                f"{path}: playlist pid={playlist['pid']} has a track without "
                f"pos/artist_name/track_name ({e!r})"
            ) from e
    return rows


def read_mpd(
    paths: list[Path], writer: CanonicalWriter, report: IngestReport, log: ProgressLog
) -> None:
    for path in sorted(paths, key=slice_sort_key):
        playlists = load_slice(path)
        writer.write_rows(slice_rows(path, playlists))
        report.files.append(str(path))
        log(f"{path.name}: {len(playlists):,} playlists, {writer.rows:,} rows so far")
