"""Ingest N Million Playlist Dataset slice files: time, rows/s and peak memory, and what that
means for the full MPD (1,000 slices, 1M playlists, 66M rows). Not a test: run it by hand.

    python benchmarks/bench_mpd_ingest.py [--slices 50] [--without-pos-every 10]
    python benchmarks/bench_mpd_ingest.py --slices 1000 --out FOLDER   # only write them

The slices are written to a temporary folder outside the repository, in the real slice schema
(info; every playlist field: name, collaborative, pid, modified_at, num_tracks, num_albums,
num_followers, num_edits, duration_ms, num_artists, sometimes description; every track field:
pos, artist_name, track_uri, artist_uri, track_name, album_uri, duration_ms, album_name), with
the real mean of 66 tracks per playlist and a Zipf-like track popularity. Every
``--without-pos-every``-th playlist has tracks without ``pos``, like some public copies.
The files are indented by 2 spaces (the real ones by 4, ~15% larger), so the extrapolation to
the full MPD scales by the larger of the row and size ratios. On a shared machine the wall time
depends on the neighbours: the CPU time (both threads) is printed too.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
from bench_kaggle_ingest import ingest_in_child

from ml.sources.kaggle_shaped import (
    DISTINCT_SHARE_CORRECTION,
    KaggleShapedSpec,
    ShapedCatalogue,
    catalogue_size,
    title,
    walk,
)
from ml.sources.synthetic import GENRES

PLAYLISTS_PER_SLICE = 1_000
FULL_MPD_ROWS = 66_346_428  # the real MPD's track rows
FULL_MPD_DISTINCT_TRACKS = 2_262_292
FULL_MPD_MEGABYTES = 33_000  # its 1,000 slices, ~33 MB each
CATALOG = 300_000


class ZipfTracks:
    """Independent Zipf draws from 300k tracks: the shape of the files, no order to learn."""

    def __init__(self, rng: np.random.Generator):
        artists = rng.integers(0, CATALOG // 10, size=CATALOG)
        self.tracks = [
            {
                "artist_name": f"Artist {a:05d}",
                "track_uri": f"spotify:track:{t:022d}",
                "artist_uri": f"spotify:artist:{a:022d}",
                "track_name": f'Song {t:06d} (feat. "Guest", Other) – Remix',
                "album_uri": f"spotify:album:{t // 12:022d}",
                "duration_ms": int(150_000 + t % 120_000),
                "album_name": f"Album {t // 12:05d}",
            }
            for t, a in enumerate(artists.tolist())
        ]
        weights = 1.0 / np.arange(1, CATALOG + 1) ** 0.9
        self.cdf = np.cumsum(weights) / weights.sum()

    def playlists(self, lengths: np.ndarray, rng: np.random.Generator) -> list[list[int]]:
        return [np.searchsorted(self.cdf, rng.random(n)).tolist() for n in lengths.tolist()]

    def track(self, t: int) -> dict:
        return self.tracks[t]


class WalkedTracks:
    """Playlists walked as in the Kaggle-shaped file (successors, genres, Zipf popularity), from
    a catalogue sized so distinct tracks are the MPD's share of rows: data a model can learn."""

    def __init__(self, slices: int, rng: np.random.Generator):
        self.spec = KaggleShapedSpec()
        rows = round(FULL_MPD_ROWS * slices / 1_000)
        share = DISTINCT_SHARE_CORRECTION * FULL_MPD_DISTINCT_TRACKS / FULL_MPD_ROWS
        size = catalogue_size(rows, self.spec.zipf_exponent, share)
        self.catalogue = ShapedCatalogue(size, self.spec, rng)

    def playlists(self, lengths: np.ndarray, rng: np.random.Generator) -> list[list[int]]:
        tracks = walk(self.catalogue, self.spec, lengths, rng)
        return np.split(tracks, np.cumsum(lengths)[:-1])

    def track(self, t: int) -> dict:
        genre, artist = int(self.catalogue.genre_of[t]), int(self.catalogue.artist_of[t])
        return {
            "artist_name": f"{GENRES[genre].title()} Artist {artist:05d}",
            "track_uri": f"spotify:track:{t:022d}",
            "artist_uri": f"spotify:artist:{genre:02d}{artist:020d}",
            "track_name": title(t),
            "album_uri": f"spotify:album:{t // 12:022d}",
            "duration_ms": 150_000 + t % 120_000,
            "album_name": f"Album {t // 12:07d}",
        }


def write_slice(
    path: Path,
    first_pid: int,
    tracks: ZipfTracks | WalkedTracks,
    rng: np.random.Generator,
    without_pos_every: int,
) -> tuple[int, int]:
    """One slice file of 1,000 playlists; its rows and its playlists without ``pos``."""
    lengths = np.clip(rng.lognormal(np.log(50), 0.75, PLAYLISTS_PER_SLICE), 5, 250).astype(int)
    playlists, without_pos = [], 0
    for i, picks in enumerate(tracks.playlists(lengths, rng)):
        pid = first_pid + i
        picks = [int(t) for t in picks]
        track = {t: tracks.track(t) for t in set(picks)}
        drop_pos = without_pos_every > 0 and pid % without_pos_every == 0
        without_pos += drop_pos
        items = [track[t] if drop_pos else {"pos": pos, **track[t]} for pos, t in enumerate(picks)]
        playlist = {
            "name": f"Road Trip {pid}",
            "collaborative": "false",
            "pid": pid,
            "modified_at": 1_493_424_000 + pid,
            "num_tracks": len(picks),
            "num_albums": len({t // 12 for t in picks}),
            "num_followers": 1 + pid % 7,
            "tracks": items,
            "num_edits": 1 + pid % 11,
            "duration_ms": sum(track[t]["duration_ms"] for t in picks),
            "num_artists": len({track[t]["artist_uri"] for t in track}),
        }
        if pid % 5 == 0:
            playlist["description"] = "songs for the road"
        playlists.append(playlist)
    slice_name = f"{first_pid}-{first_pid + PLAYLISTS_PER_SLICE - 1}"
    document = {
        "info": {"generated_on": "2017-12-03 08:41:42", "slice": slice_name, "version": "v1"},
        "playlists": playlists,
    }
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return int(lengths.sum()), without_pos


def write_slices(folder: Path, slices: int, without_pos_every: int, walked: bool) -> dict:
    """Write ``slices`` slice files into ``folder``, always the same ones for the same count."""
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    tracks = WalkedTracks(slices, rng) if walked else ZipfTracks(rng)
    rows = without_pos = 0
    for s in range(slices):
        first = s * PLAYLISTS_PER_SLICE
        path = folder / f"mpd.slice.{first}-{first + PLAYLISTS_PER_SLICE - 1}.json"
        n, w = write_slice(path, first, tracks, rng, without_pos_every)
        rows, without_pos = rows + n, without_pos + w
    return {
        "slices": slices,
        "slice_megabytes": sum(p.stat().st_size for p in folder.iterdir()) / 2**20,
        "rows_in_slices": rows,
        "playlists": slices * PLAYLISTS_PER_SLICE,
        "playlists_without_pos_in_slices": without_pos,
        "write_seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=50)
    parser.add_argument("--without-pos-every", type=int, default=10)
    parser.add_argument(
        "--out", type=Path, help="only write the slices into this folder, with a manifest"
    )
    parser.add_argument(
        "--walked",
        action="store_true",
        help="playlists walked as in the Kaggle-shaped file, so models can learn from them",
    )
    args = parser.parse_args()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        written = write_slices(args.out, args.slices, args.without_pos_every, args.walked)
        manifest = args.out.with_name(f"{args.out.name}.manifest.json")
        manifest.write_text(json.dumps(written, indent=1), encoding="utf-8")
        print(json.dumps(written, indent=2))
        return
    with tempfile.TemporaryDirectory(prefix="bench-mpd-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        written = write_slices(data, args.slices, args.without_pos_every, args.walked)
        rows, megabytes = written["rows_in_slices"], written["slice_megabytes"]
        fields = ["rows_written", "playlists_without_pos", "files"]
        measured = ingest_in_child(data, Path(tmp) / "raw.parquet", fields)
        # the real slices are ~15% larger per row (4-space indents): scale by the larger ratio
        to_full = max(FULL_MPD_ROWS / rows, FULL_MPD_MEGABYTES / megabytes)
        result = {
            **{k: v for k, v in written.items() if k != "playlists"},
            **measured,
            "files": len(measured["files"]),
            "ingest_rows_per_second": rows / measured["ingest_seconds"],
            "ingest_megabytes_per_second": megabytes / measured["ingest_seconds"],
            # the CPU time of both threads bounds the wall time on an idle 2-core machine
            "full_mpd_estimate_seconds_from_cpu": measured["ingest_cpu_seconds"] * to_full,
            "full_mpd_estimate_seconds_from_wall": measured["ingest_seconds"] * to_full,
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
