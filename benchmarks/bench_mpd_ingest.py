"""Ingest N Million Playlist Dataset slice files: time, rows/s and peak memory, and what that
means for the full MPD (1,000 slices, 1M playlists, 66M rows). Not a test: run it by hand.

    python benchmarks/bench_mpd_ingest.py [--slices 50] [--without-pos-every 10]

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

PLAYLISTS_PER_SLICE = 1_000
FULL_MPD_ROWS = 66_346_428  # the real MPD's track rows
FULL_MPD_MEGABYTES = 33_000  # its 1,000 slices, ~33 MB each
CATALOG = 300_000


def catalog(rng: np.random.Generator) -> list[dict]:
    artists = rng.integers(0, CATALOG // 10, size=CATALOG)
    return [
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


def write_slice(path: Path, first_pid: int, tracks: list[dict], rng, without_pos_every: int):
    weights = 1.0 / np.arange(1, len(tracks) + 1) ** 0.9
    cdf = np.cumsum(weights) / weights.sum()
    lengths = np.clip(rng.lognormal(np.log(50), 0.75, PLAYLISTS_PER_SLICE), 5, 250).astype(int)
    playlists, without_pos = [], 0
    for i, length in enumerate(lengths.tolist()):
        pid = first_pid + i
        picks = np.searchsorted(cdf, rng.random(length)).tolist()
        drop_pos = without_pos_every > 0 and pid % without_pos_every == 0
        without_pos += drop_pos
        items = [
            tracks[t] if drop_pos else {"pos": pos, **tracks[t]} for pos, t in enumerate(picks)
        ]
        playlist = {
            "name": f"Road Trip {pid}",
            "collaborative": "false",
            "pid": pid,
            "modified_at": 1_493_424_000 + pid,
            "num_tracks": length,
            "num_albums": len({t // 12 for t in picks}),
            "num_followers": 1 + pid % 7,
            "tracks": items,
            "num_edits": 1 + pid % 11,
            "duration_ms": sum(tracks[t]["duration_ms"] for t in picks),
            "num_artists": len({tracks[t]["artist_uri"] for t in picks}),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=50)
    parser.add_argument("--without-pos-every", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench-mpd-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        started = time.perf_counter()
        tracks = catalog(rng)
        rows = without_pos = 0
        for s in range(args.slices):
            first = s * PLAYLISTS_PER_SLICE
            path = data / f"mpd.slice.{first}-{first + PLAYLISTS_PER_SLICE - 1}.json"
            n, w = write_slice(path, first, tracks, rng, args.without_pos_every)
            rows, without_pos = rows + n, without_pos + w
        written_seconds = time.perf_counter() - started
        megabytes = sum(p.stat().st_size for p in data.iterdir()) / 2**20
        fields = ["rows_written", "playlists_without_pos", "files"]
        measured = ingest_in_child(data, Path(tmp) / "raw.parquet", fields)
        # the real slices are ~15% larger per row (4-space indents): scale by the larger ratio
        to_full = max(FULL_MPD_ROWS / rows, FULL_MPD_MEGABYTES / megabytes)
        result = {
            "slices": args.slices,
            "slice_megabytes": megabytes,
            "rows_in_slices": rows,
            "playlists_without_pos_in_slices": without_pos,
            "write_seconds": written_seconds,
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
