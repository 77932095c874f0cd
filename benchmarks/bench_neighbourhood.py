"""Neighbourhood families (item-kNN, session-kNN) on a ~1M-row synthetic run and on yes_small:
fit and validation-evaluation seconds, peak RSS, hit rate@10/@100 and MRR@100 of every default
grid variant, beside the sequential-rules baseline on the same split. Not a test.

    python benchmarks/bench_neighbourhood.py [--playlists 45000] [--yes ../shared/data/yes_small]
        [--repeats 3] [--datasets synthetic yes_small]

Data is processed the way the dbt models do it: playlists in source order, a repeated track kept
at its first position, playlists of >= 3 tracks, a 70/20/10 split by a salted md5 of the playlist
key, tracks encoded with the train vocabulary (-1: unknown), query = all but the last track.
Every list is then filled with popular tracks where a family has nothing more to say (as the
platform does; not timed), so hit rates compare like with like. Times are medians over
``--repeats``, wall clock with CPU seconds in brackets (the machine is shared, so CPU is the
steadier figure); peak RSS is the process's high-water mark during the candidate's fit and
evaluation (reset before each), so it includes the loaded data set (each data set runs in a
process of its own).
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from ml.evaluation.metrics import ranking_metrics
from ml.recommenders.base import Queries, Recommender
from ml.recommenders.families import create
from ml.recommenders.neighbourhood import DEFAULT_GRIDS
from ml.recommenders.popularity import Popularity
from ml.recommenders.sequential_rules import SequentialRules
from ml.sequences import Sequences
from ml.sources import ingest
from ml.sources.synthetic import SyntheticSpec

SPLIT_SALT = "next-track-v1"  # dbt_project.yml vars: split_salt, train/validation fractions
TRAIN_BUCKETS, VALIDATION_BUCKETS = 7000, 9000
TOP = 100
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _clean(column: str) -> str:
    """dbt's clean_name: surrounding white space trimmed, blank -> null."""
    return f"nullif(regexp_replace({column}, '^\\s+|\\s+$', '', 'g'), '')"


def _pair_key(left: str, right: str) -> str:
    """dbt's pair_key: both parts escaped, joined by '|||'."""
    escaped = [f"replace(replace({c}, '\\', '\\\\'), '|', '\\|')" for c in (left, right)]
    return f"{escaped[0]} || '|||' || {escaped[1]}"


# The dbt models' cleaning, first occurrences, minimum length and split, in one query.
PLAYLIST_TRACKS = f"""
with cleaned as (
    select row_id, {_clean("user_id")} as user_id, {_clean("playlist")} as playlist,
        {_clean("artist")} as artist, {_clean("track")} as track
    from read_parquet($path)
),
events as (
    select row_id, {_pair_key("user_id", "playlist")} as playlist_key,
        {_pair_key("artist", "track")} as track_key
    from cleaned
    where user_id is not null and playlist is not null and artist is not null
        and track is not null
),
first_occurrences as (
    select * from events
    qualify row_number() over (partition by playlist_key, track_key order by row_id) = 1
),
playlists as (
    select playlist_key, min(row_id) as first_row_id,
        cast(md5_number('{SPLIT_SALT}/' || playlist_key) % 10000 as integer) as bucket
    from first_occurrences group by playlist_key having count(*) >= 3
)
select case when p.bucket < {TRAIN_BUCKETS} then 'train'
            when p.bucket < {VALIDATION_BUCKETS} then 'validation' else 'test' end as split,
    p.first_row_id, e.track_key
from first_occurrences e join playlists p using (playlist_key)
order by p.first_row_id, e.row_id
"""


@dataclass
class Split:
    n_items: int
    train: Sequences
    queries: Queries
    labels: Sequences


def load_split(parquet: Path) -> Split:
    with duckdb.connect() as connection:
        connection.execute("set enable_progress_bar = false")
        table = connection.execute(PLAYLIST_TRACKS, {"path": str(parquet)}).fetchnumpy()
    split, playlist, track = table["split"], table["first_row_id"], table["track_key"]
    is_train = split == "train"
    vocabulary = np.unique(track[is_train])
    ids = np.searchsorted(vocabulary, track)
    ids[(ids >= len(vocabulary)) | (vocabulary[np.minimum(ids, len(vocabulary) - 1)] != track)] = -1
    train = _sequences(ids[is_train], playlist[is_train])
    validation = _sequences(ids[split == "validation"], playlist[split == "validation"])
    lengths = validation.lengths
    keep = validation.age_of_each_item() > 0
    queries = Sequences.from_lengths(validation.items[keep], lengths - 1)
    labels = Sequences.from_lengths(validation.items[~keep], np.ones(len(lengths), np.int64))
    return Split(len(vocabulary), train, Queries(queries), labels)


def _sequences(items: np.ndarray, playlist: np.ndarray) -> Sequences:
    """Rows are already grouped by playlist in source order."""
    starts = np.flatnonzero(np.r_[True, playlist[1:] != playlist[:-1]])
    lengths = np.diff(np.r_[starts, len(playlist)])
    return Sequences.from_lengths(items.astype(np.int32), lengths)


def _status_mib(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", status).group(1)) / 1024


def peak_rss_mib() -> float:
    return _status_mib("VmHWM")


def rss_mib() -> float:
    return _status_mib("VmRSS")


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def timed(action: Callable[[], Any], repeats: int) -> tuple[Any, float, float]:
    """The last result, and the median wall and CPU seconds."""
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = action()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return result, statistics.median(wall), statistics.median(cpu)


def evaluate(model: Recommender, data: Split, popular: Popularity, repeats: int) -> dict:
    reset_peak_rss()
    top, wall, cpu = timed(lambda: model.top_k(data.queries, TOP), repeats)
    top, _ = popular.fill(top, data.queries)
    metrics = ranking_metrics(top.ids, data.labels, data.n_items, ks=(10, TOP))
    return {
        "eval_s": wall,
        "eval_cpu_s": cpu,
        "peak_mib": peak_rss_mib(),
        "hr10": metrics["hit_rate_at_10"],
        "hr100": metrics[f"hit_rate_at_{TOP}"],
        "mrr100": metrics[f"mrr_at_{TOP}"],
    }


def candidates(n_items: int, families: list[str]) -> list[tuple[Recommender, list[dict]]]:
    """The sequential-rules baseline, then each grid entry with its scoring variants."""
    chosen = [(SequentialRules.baseline(n_items), [{}])]
    for family in families:
        for entry in DEFAULT_GRIDS[family]:
            chosen.append((create(family, entry["params"], n_items), entry["variants"]))
    return chosen


def run(data: Split, repeats: int, families: list[str]) -> None:
    popular = Popularity(n_items=data.n_items)
    popular.fit(data.train)
    print(
        "| candidate | fit s (cpu) | eval s (cpu) | peak MiB | HR@10 | HR@100 | MRR@100 |\n"
        "|---|---|---|---|---|---|---|"
    )
    for model, variants in candidates(data.n_items, families):
        reset_peak_rss()
        _, fit_wall, fit_cpu = timed(lambda model=model: model.fit(data.train), repeats)
        fit_peak = peak_rss_mib()
        for variant in variants:
            scored = model.with_scoring(**variant) if variant else model
            row = evaluate(scored, data, popular, repeats)
            print(
                f"| {scored.name} | {fit_wall:.2f} ({fit_cpu:.2f}) | "
                f"{row['eval_s']:.2f} ({row['eval_cpu_s']:.2f}) | "
                f"{max(row['peak_mib'], fit_peak):.0f} | {row['hr10']:.4f} | "
                f"{row['hr100']:.4f} | {row['mrr100']:.4f} |",
                flush=True,
            )


def benchmark(name: str, args: argparse.Namespace) -> None:
    """One data set, in a process of its own so that its memory figures are its own."""
    with tempfile.TemporaryDirectory() as tmp:
        parquet = Path(tmp) / f"{name}.parquet"
        if name == "synthetic":
            report = ingest(None, parquet, synthetic=SyntheticSpec(playlists=args.playlists))
        else:
            report = ingest(args.yes, parquet)
        data = load_split(parquet)
    print(
        f"\n## {name}: {report.rows_written:,} rows; train {len(data.train):,} playlists, "
        f"{len(data.train.items):,} tracks played, {data.n_items:,} known tracks; validation "
        f"{len(data.queries):,} queries; resident after loading: {rss_mib():.0f} MiB",
        flush=True,
    )
    run(data, args.repeats, args.families)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--playlists", type=int, default=45_000)
    parser.add_argument("--yes", type=Path, default=SHARED_DATA / "yes_small")
    parser.add_argument("--datasets", nargs="+", default=["synthetic", "yes_small"])
    parser.add_argument("--families", nargs="+", default=sorted(DEFAULT_GRIDS))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    for name in args.datasets:
        process = spawn.Process(target=benchmark, args=(name, args))
        process.start()
        process.join()
        if process.exitcode:
            raise SystemExit(f"{name}: the benchmark failed (exit code {process.exitcode})")


if __name__ == "__main__":
    main()
