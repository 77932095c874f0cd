"""SLIST's fit cost by vocabulary size: seconds and peak RSS of one fit, each size in a process of
its own (so each peak is its own), on playlists drawn with Zipf-like track popularity.

    python benchmarks/bench_slist.py --sizes 10000 20000 50000

A size whose dense matrices (12 bytes a cell at the peak, ml/recommenders/slist.py) would not fit
in 80% of the memory available now is not run; the line says what it would need.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ml.recommenders.families import create
from ml.recommenders.slist import BYTES_PER_CELL_WHILE_FITTING
from ml.sequences import Sequences


def playlists(n_playlists: int, n_tracks: int, mean_length: int, seed: int) -> Sequences:
    """Playlists of geometric lengths; each a random walk over a popularity-ranked catalogue, so
    neighbouring tracks co-occur more than chance (as on real playlists) and popular ones most."""
    rng = np.random.default_rng(seed)
    lengths = rng.geometric(1 / mean_length, n_playlists).astype(np.int64) + 1
    popularity = 1 / np.arange(1, n_tracks + 1) ** 1.1
    starts = rng.choice(n_tracks, n_playlists, p=popularity / popularity.sum())
    steps = rng.integers(-50, 51, lengths.sum())
    items = np.repeat(starts, lengths) + steps
    return Sequences.from_lengths(np.clip(items, 0, n_tracks - 1), lengths)


def available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def fit_once(size: int, args: argparse.Namespace) -> dict:
    train = playlists(args.playlists, args.tracks, args.mean_length, args.seed)
    model = create("slist", {"max_items": size}, args.tracks)
    started = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - started
    return {
        "vocabulary": len(model.vocabulary),
        "train_rows": len(train.items),
        "fit_seconds": round(seconds, 1),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "weights_gib": round(model.weights.nbytes / 2**30, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000, 50_000])
    parser.add_argument("--playlists", type=int, default=500_000)
    parser.add_argument("--tracks", type=int, default=200_000)
    parser.add_argument("--mean-length", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child's size
    args = parser.parse_args()
    if args.one:
        print(json.dumps(fit_once(args.one, args)))
        return
    for size in args.sizes:
        needed = size * size * BYTES_PER_CELL_WHILE_FITTING
        if needed > 0.8 * available_bytes():
            line = {
                "vocabulary": size,
                "not_run": f"its dense matrices need {needed / 2**30:.1f} GiB at the peak; "
                f"{available_bytes() / 2**30:.1f} GiB available",
            }
        else:
            child = subprocess.run(
                [sys.executable, __file__, *sys.argv[1:], "--one", str(size)],
                capture_output=True,
                text=True,
                check=True,
            )
            line = json.loads(child.stdout.strip().splitlines()[-1])
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
