"""`dbt build` on its own (SQL-only iteration) against real and hand-made fixtures."""

import os
import subprocess
import unicodedata
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.sources import ingest
from ml.sources.canonical import CANONICAL_SCHEMA

REPO_ROOT = Path(__file__).resolve().parents[1]


def dbt_build(data_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    """Exactly the README's command, from the repository root, with the data folder and dbt's
    artifacts moved (dbt_project/target/manifest.json is the one the definitions load: a
    pipeline in another test would read it half-written)."""
    return subprocess.run(
        ["dbt", "build", "--project-dir", "dbt_project", "--profiles-dir", "profiles", *extra],
        cwd=REPO_ROOT,
        env={**os.environ, **own_dbt_artifacts(data_dir)},
        capture_output=True,
        text=True,
        check=False,
    )


def own_dbt_artifacts(data_dir: Path) -> dict[str, str]:
    """The environment of a dbt command run by hand on ``data_dir``, writing its target folder
    there."""
    return {"NEXT_TRACK_DATA_DIR": str(data_dir), "DBT_TARGET_PATH": str(data_dir / "target")}


def query(data_dir: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        return connection.execute(sql).fetchall()


@pytest.fixture(scope="module")
def yes_warehouse(shared_data, tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("yes")
    ingest(shared_data / "yes_small", data_dir / "raw" / "playlist_events.parquet")
    result = dbt_build(data_dir)
    assert result.returncode == 0, result.stdout[-3000:]
    return data_dir


def is_placeholder(name: str) -> bool:
    """Made only of punctuation (dashes included) and white space: a missing name."""
    return all(unicodedata.category(c).startswith("P") or c.isspace() for c in name)


def yes_song_names(folder: Path) -> list[tuple[str, str]]:
    songs = [line.split("\t") for line in (folder / "song_hash.txt").read_text().splitlines()]
    return [
        (artist.replace("\\/", "/").strip(), title.replace("\\/", "/").strip())
        for _, title, artist in songs
    ]


def yes_playlists(folder: Path) -> list[list[tuple[str, str]]]:
    """train.txt as (artist, title) lists, trimmed, first occurrence of each track only, songs
    whose artist or title is a placeholder left out.

    Yes.com has songs with distinct ids but the same artist and title: they are one track.
    """
    names = yes_song_names(folder)
    lines = (folder / "train.txt").read_text().splitlines()[2:]
    return [
        list(
            dict.fromkeys(
                names[int(i)] for i in line.split() if not placeholder_song(names[int(i)])
            )
        )
        for line in lines
    ]


def placeholder_song(name: tuple[str, str]) -> bool:
    return is_placeholder(name[0]) or is_placeholder(name[1])


def test_split_fractions_on_yes_small(yes_warehouse, shared_data):
    playlists = yes_playlists(shared_data / "yes_small")
    long_enough = sum(1 for tracks in playlists if len(tracks) >= 3)
    counts = dict(query(yes_warehouse, "select split, count(*) from playlist_splits group by 1"))
    assert sum(counts.values()) == long_enough
    total = sum(counts.values())
    for split, target in {"train": 0.7, "validation": 0.2, "test": 0.1}.items():
        assert abs(counts[split] / total - target) < 0.01, counts
    too_short = query(yes_warehouse, "select playlists_too_short from dataset_stats")[0][0]
    assert too_short == sum(1 for tracks in playlists if 0 < len(tracks) < 3)  # clean rows, too few


def test_sequences_keep_source_order_and_keys_are_unique(yes_warehouse, shared_data):
    playlists = yes_playlists(shared_data / "yes_small")
    names = {
        k: (a, t)
        for k, a, t in query(yes_warehouse, "select track_key, artist, title from dim_tracks")
    }
    sequences = dict(
        query(yes_warehouse, "select playlist_key, tracks from int_playlist_sequences")
    )
    long_enough = [n for n, tracks in enumerate(playlists, start=1) if len(tracks) >= 3]
    for number in (long_enough[0], long_enough[len(long_enough) // 2], long_enough[-1]):
        tracks = sequences[f"yes.com|||train:{number:06d}"]
        assert [names[track_key] for track_key in tracks] == playlists[number - 1]
    duplicates = query(
        yes_warehouse,
        "select (select count(*) - count(distinct playlist_key) from playlist_splits),"
        " (select count(*) - count(distinct track_key) from dim_tracks),"
        " (select count(*) from dim_tracks)",
    )[0]
    distinct_tracks = len({track for tracks in playlists for track in tracks})
    assert duplicates == (0, 0, distinct_tracks)


def test_track_counts_are_the_playlists_holding_each_track(yes_warehouse, shared_data):
    """dim_tracks counts a track once per playlist (yes_small repeats tracks within playlists)."""
    held = Counter(track for tracks in yes_playlists(shared_data / "yes_small") for track in tracks)
    rows = query(yes_warehouse, "select artist, title, occurrences, playlists from dim_tracks")
    assert {(a, t): (o, p) for a, t, o, p in rows} == {track: (n, n) for track, n in held.items()}


def test_placeholder_songs_of_yes_small_are_missing_names(yes_warehouse, shared_data):
    """song_hash.txt ids 2794 and 2845 are '-' by '-': dropped and counted as missing, not one
    track '-|||-' that gets recommended."""
    names = yes_song_names(shared_data / "yes_small")
    placeholders = {i for i, name in enumerate(names) if placeholder_song(name)}
    assert placeholders == {2794, 2845}
    lines = (shared_data / "yes_small" / "train.txt").read_text().splitlines()[2:]
    rows = sum(1 for line in lines for i in line.split() if int(i) in placeholders)
    assert rows > 0
    stats = query(
        yes_warehouse, "select rows_null_like_artist, rows_null_like_track from dataset_stats"
    )
    assert stats == [(rows, rows)]
    assert query(yes_warehouse, "select count(*) from dim_tracks where track_key = '-|||-'") == [
        (0,)
    ]


def test_split_is_deterministic_and_salted(yes_warehouse, tmp_path):
    data_dir = tmp_path / "again"
    (data_dir / "raw").mkdir(parents=True)
    (data_dir / "raw" / "playlist_events.parquet").symlink_to(
        yes_warehouse / "raw" / "playlist_events.parquet"
    )
    assert dbt_build(data_dir, "--select", "+playlist_splits").returncode == 0
    sql = "select playlist_key, split from playlist_splits order by playlist_key"
    assert query(data_dir, sql) == query(yes_warehouse, sql)
    result = dbt_build(data_dir, "--select", "+playlist_splits", "--vars", "{split_salt: other}")
    assert result.returncode == 0
    assert query(data_dir, sql) != query(yes_warehouse, sql)


def write_raw(data_dir: Path, rows: list[tuple[str, str | None, str | None, str]]) -> None:
    """(user, artist, track, playlist) rows as the raw table, row_id in list order."""
    table = pa.table(
        {
            "row_id": list(range(len(rows))),
            **{
                name: [r[i] for r in rows]
                for i, name in enumerate(["user_id", "artist", "track", "playlist"])
            },
        },
        schema=CANONICAL_SCHEMA,
    )
    (data_dir / "raw").mkdir(parents=True)
    pq.write_table(table, data_dir / "raw" / "playlist_events.parquet")


def test_cleaning_keys_and_drop_counts_on_hand_made_rows(tmp_path):
    rows = [
        # user, artist, track, playlist: a name containing the separator must not collide
        ("u1", "a|||b", "c", "p"),
        ("u1", "a", "b|||c", "p"),
        ("u1", "  a  ", " b|||c ", "p"),  # same track as above once trimmed: a repeat
        ("u1", "", "x", "p"),  # blank artist
        ("u1", "d", None, "p"),  # null track
        ("u1", "e", "f", "p"),
        ("u2", "e", "f", "short"),  # too short a playlist
    ]
    write_raw(tmp_path, rows)
    # --exclude alone selects every use case (no default selector): name the next-track folder
    result = dbt_build(
        tmp_path,
        "--select",
        "path:models/next_track",
        "--exclude",
        "test_type:generic,resource_type:test",
    )
    assert result.returncode == 0, result.stdout[-3000:]
    tracks = query(tmp_path, "select tracks from int_playlist_sequences")
    assert tracks == [(["a\\|\\|\\|b|||c", "a|||b\\|\\|\\|c", "e|||f"],)]
    stats = query(
        tmp_path,
        "select rows_in, rows_blank_artist, rows_blank_track, rows_repeated_in_playlist,"
        " rows_clean, playlists_too_short from dataset_stats",
    )
    assert stats == [(7, 1, 1, 1, 4, 1)]


NULL_LIKE_ROWS = [
    ("u1", "NULL", "a", "p"),  # null-like artist
    ("u1", "x", " n/a ", "p"),  # null-like track, once trimmed
    ("u1", "None", "NaN", "p"),  # both
    ("u1", "Nonet", "Nullify", "p"),  # real names that only start like one
    ("u1", "b", "c", "p"),
    ("u1", "", "f", "p"),  # blank artist: counted as blank, not null-like
    ("u1", "d", "e", "p"),
]
PLACEHOLDER_ROWS = [
    ("u1", "-", "a", "p"),  # a dash for the artist
    ("u1", "x", " — ", "p"),  # an em dash for the track, once trimmed
    ("u1", "...", "?!", "p"),  # both
    ("u1", "-M-", "Qui de nous deux", "p"),  # punctuation beside letters: a real name
    ("u1", "b", "c", "p"),
    ("u1", "d", "e", "p"),
]
# ten clean playlists of three tracks, so the split has a train part and every test can run
FILLER_ROWS = [("u2", f"artist {k}", f"song {j}", f"p{k}") for k in range(10) for j in range(3)]
NULL_LIKE_STATS = (
    "select rows_in, rows_blank_artist, rows_null_like_artist, rows_blank_track,"
    " rows_null_like_track, rows_incomplete, rows_clean from dataset_stats"
)
# rows, what the playlist keeps, the counts, the counts with the var that keeps such names
MISSING_NAMES = {
    "null-like": (
        NULL_LIKE_ROWS,
        ["Nonet|||Nullify", "b|||c", "d|||e"],
        (37, 1, 2, 0, 2, 4, 33),
        ("{null_like_names: []}", (37, 1, 0, 0, 0, 1, 36)),
    ),
    "punctuation-only": (
        PLACEHOLDER_ROWS,
        ["-M-|||Qui de nous deux", "b|||c", "d|||e"],
        (36, 0, 2, 0, 2, 3, 33),
        ("{punctuation_only_names_missing: false}", (36, 0, 0, 0, 0, 0, 36)),
    ),
}


@pytest.mark.parametrize("kind", MISSING_NAMES)
def test_missing_names_are_dropped_and_counted(tmp_path, kind):
    rows, kept_tracks, counts, _ = MISSING_NAMES[kind]
    write_raw(tmp_path, rows + FILLER_ROWS)
    result = dbt_build(tmp_path)  # every data test, the null-like one on dataset_stats included
    assert result.returncode == 0, result.stdout[-3000:]
    assert query(
        tmp_path, "select tracks from int_playlist_sequences where playlist_key = 'u1|||p'"
    ) == [(kept_tracks,)]
    assert query(tmp_path, NULL_LIKE_STATS) == [counts]


@pytest.mark.parametrize("kind", MISSING_NAMES)
def test_missing_names_can_be_kept(tmp_path, kind):
    rows, _, _, (keep, counts) = MISSING_NAMES[kind]
    write_raw(tmp_path, rows + FILLER_ROWS)
    result = dbt_build(tmp_path, "--vars", keep)
    assert result.returncode == 0, result.stdout[-3000:]
    assert query(tmp_path, NULL_LIKE_STATS) == [counts]


def test_dbt_names_the_missing_raw_file(tmp_path):
    result = dbt_build(tmp_path)
    assert result.returncode != 0
    assert f"Raw playlist_events not found at '{tmp_path}/raw/playlist_events.parquet'" in (
        result.stdout
    )
