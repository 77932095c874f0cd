"""Per-request encode time of the next-track pyfunc against the catalogue's size, in process: a
3-track request (an exact key, a key typed in lower case, an "artist - title" in capitals) on
synthetic catalogues, with the lookups the pyfunc builds once at load (``TrackLookup``), beside
what each request paid before them (``pyarrow.compute.index_in`` over every key and every
lower-cased name, twice a request).

    python benchmarks/bench_serving_lookup.py --tracks 3000 2000000
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml.catalogue import Catalogue
from ml.serving.lookup import TrackLookup
from ml.serving.next_track_pyfunc import encode

REQUESTS = 200


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synthetic_catalogue(n: int) -> Catalogue:
    artists = [f"Artist {i // 10:07d}" for i in range(n)]
    titles = [f"Song Title {i:08d}" for i in range(n)]
    return Catalogue(
        pa.table(
            {
                "key": [f"{a}|||{t}" for a, t in zip(artists, titles, strict=True)],
                "artist": artists,
                "title": titles,
                "train_count": np.random.default_rng(0).integers(1, 100, n),
            }
        )
    )


def median_ms(encode_one, requests: list[list[str]]) -> float:
    timings = []
    for request in requests:
        started = time.perf_counter()
        encode_one(request)
        timings.append((time.perf_counter() - started) * 1000)
    return float(np.median(timings))


def encode_request(lookup: TrackLookup, request: list[str]) -> None:
    encode(lookup, [request])


def index_in_per_request(catalogue: Catalogue):
    """The per-request path before the lookups were built at load."""
    table = catalogue.table
    names = pc.utf8_lower(
        pc.binary_join_element_wise(table.column("artist"), table.column("title"), " - ")
    ).combine_chunks()

    def encode_one(request: list[str]) -> np.ndarray:
        flat = pa.array(request, pa.string())
        by_key = catalogue.ids_of(flat)
        by_name = pc.index_in(pc.utf8_lower(flat), value_set=names).fill_null(-1).to_numpy()
        return np.where(by_key >= 0, by_key, by_name)

    return encode_one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracks", type=int, nargs="+", default=[3_000, 2_000_000])
    sizes = parser.parse_args().tracks
    print(
        "| tracks | lookups built at load (s) | RSS of the lookups (MiB) "
        "| encode p50, lookups (ms) | encode p50, index_in per request (ms) |"
    )
    print("|---:|---:|---:|---:|---:|")
    for n in sizes:
        catalogue = synthetic_catalogue(n)
        rng = np.random.default_rng(1)
        requests = []
        for a, b, c in rng.integers(0, n, (REQUESTS, 3)):
            artist, title = catalogue.table.column("artist")[c], catalogue.table.column("title")[c]
            requests.append(
                [
                    catalogue.keys[a].as_py(),
                    catalogue.keys[b].as_py().lower(),
                    f"{artist} - {title}".upper(),
                ]
            )
        before = rss_mib()
        started = time.perf_counter()
        lookup = TrackLookup(catalogue)
        built = time.perf_counter() - started
        grown = rss_mib() - before
        assert (encode(lookup, requests[:1]).history.items >= 0).all()
        with_lookups = median_ms(partial(encode_request, lookup), requests)
        per_request = median_ms(index_in_per_request(catalogue), requests)
        print(f"| {n:,} | {built:.2f} | {grown:.0f} | {with_lookups:.3f} | {per_request:.3f} |")


if __name__ == "__main__":
    main()
