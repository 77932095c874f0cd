"""Every recommender family on a ~1M-row synthetic run and on yes_small (or on a dataset folder a
pipeline run saved, e.g. data/runs/<run>/dataset): fit and validation-evaluation seconds, peak
RSS, hit rate@10/@100 and MRR@100 of every default grid variant, beside the sequential-rules
baseline on the same split; then, for the best variant of each family, its bundle size and its
serving latency (one query at a time, in process). Not a test.

    python benchmarks/bench_recommenders.py [--playlists 45000] [--yes ../shared/data/yes_small]
        [--datasets synthetic yes_small] [--dataset-folder DIR] [--validation-sample N]
        [--families word2vec sequential_rules item_knn session_knn] [--repeats 3]

Data goes through the platform's own path into a scratch folder: ``ml.sources.ingest``, ``dbt
build`` (cleaning, first occurrences, playlists of >= 3 tracks, the 70/20/10 hash split), then
``read_next_track_data`` (train catalogue; query = all but the last track, label = the last).
Evaluation is the pipeline's (``ml.evaluation.candidates.evaluate``): all validation queries,
top 100, lists filled with popular tracks. Times are medians over ``--repeats``, wall clock with
CPU seconds in brackets (the machine is shared: CPU is the steadier figure). Peak RSS is the
process's high-water mark since the row before (a model's first row includes its fit); each
data set runs in a process of its own, so it includes that data set and nothing else.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ml.datasets.next_track import NextTrackData, read_next_track_data
from ml.evaluation.candidates import evaluate
from ml.recommenders.base import Recommender
from ml.recommenders.families import create
from ml.recommenders.popularity import Popularity
from ml.recommenders.sequential_rules import SequentialRules
from ml.serving.bundle import bundle_bytes, save_bundle, serving_latency_ms
from ml.sources import ingest
from ml.sources.synthetic import SyntheticSpec
from orchestration.config import NEIGHBOURHOOD_GRID, SEQUENTIAL_RULES_GRID, WORD2VEC_GRID

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
GRIDS = {
    family: [unit for unit in WORD2VEC_GRID + SEQUENTIAL_RULES_GRID + NEIGHBOURHOOD_GRID
             if unit["family"] == family]
    for family in ("word2vec", "sequential_rules", "item_knn", "session_knn")
}  # fmt: skip
KS = (10, 100)


def next_track_data(source: Path | None, playlists: int, folder: Path) -> tuple[int, NextTrackData]:
    """Rows ingested, and the encoded data set as a pipeline run builds it."""
    spec = SyntheticSpec(playlists=playlists)
    report = ingest(source, folder / "raw" / "playlist_events.parquet", synthetic=spec)
    dbt = Path(sys.executable).parent / "dbt"
    subprocess.run(
        [dbt, "build", "--quiet", "--project-dir", "dbt_project", "--profiles-dir", "profiles"],
        cwd=REPO_ROOT,
        env={**os.environ, "NEXT_TRACK_DATA_DIR": str(folder)},
        check=True,
    )
    return report.rows_written, read_next_track_data(folder / "warehouse.duckdb")


def _status_mib(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", status).group(1)) / 1024


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


def candidates(n_items: int, families: list[str]) -> list[tuple[Recommender, list[dict]]]:
    """The sequential-rules baseline, then each grid entry with its scoring variants."""
    chosen = [(SequentialRules.baseline(n_items), [{}])]
    for family in families:
        for entry in GRIDS[family]:
            chosen.append((create(family, entry["params"], n_items), entry["variants"]))
    return chosen


def run(data: NextTrackData, repeats: int, families: list[str], sample: int | None) -> None:
    n_items = len(data.catalogue)
    popular = Popularity(n_items=n_items)
    popular.fit(data.train)
    validation = data.validation.sample(sample)
    print(f"validation queries scored: {len(validation):,} of {len(data.validation):,}")
    print("| candidate | fit s (cpu) | eval s (cpu) | peak MiB | HR@10 | HR@100 | MRR@100 |")
    print("|---|---|---|---|---|---|---|")
    best: dict[str, tuple[float, Recommender]] = {}
    for model, variants in candidates(n_items, families):
        reset_peak_rss()
        _, fit_wall, fit_cpu = timed(lambda model=model: model.fit(data.train), repeats)
        for variant in variants:
            scored = model.with_scoring(**variant) if variant else model
            (metrics, _), wall, cpu = timed(
                lambda scored=scored: evaluate(scored, validation, popular, KS), repeats
            )
            print(
                f"| {scored.name} | {fit_wall:.2f} ({fit_cpu:.2f}) | {wall:.2f} ({cpu:.2f}) | "
                f"{_status_mib('VmHWM'):.0f} | {metrics['hit_rate_at_10']:.4f} | "
                f"{metrics['hit_rate_at_100']:.4f} | {metrics['mrr_at_100']:.4f} |",
                flush=True,
            )
            if metrics["hit_rate_at_100"] > best.get(scored.family, (-1.0, None))[0]:
                best[scored.family] = (metrics["hit_rate_at_100"], scored)
            reset_peak_rss()
    print("\n| family (best variant) | bundle MB | serving ms per query (median) |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for family, (_, model) in best.items():
            folder = save_bundle(Path(tmp) / family, model, data.catalogue, {})
            latency = serving_latency_ms(model, 200, data.test.queries.history)
            print(f"| {model.name} | {bundle_bytes(folder) / 1e6:.1f} | {latency:.2f} |")


def benchmark(name: str, args: argparse.Namespace) -> None:
    """One data set, in a process of its own so that its memory figures are its own."""
    if name == "folder":
        data = NextTrackData.load(args.dataset_folder)
        rows = len(data.train.items)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            source = None if name == "synthetic" else args.yes
            rows, data = next_track_data(source, args.playlists, Path(tmp))
    print(
        f"\n## {name}: {rows:,} rows; train {len(data.train):,} playlists, "
        f"{len(data.train.items):,} tracks played, {len(data.catalogue):,} known tracks; "
        f"validation {len(data.validation):,} queries; resident after loading: "
        f"{_status_mib('VmRSS'):.0f} MiB",
        flush=True,
    )
    run(data, args.repeats, args.families, args.validation_sample)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--playlists", type=int, default=45_000)
    parser.add_argument("--yes", type=Path, default=SHARED_DATA / "yes_small")
    parser.add_argument("--datasets", nargs="+", default=["synthetic", "yes_small"])
    parser.add_argument("--families", nargs="+", choices=sorted(GRIDS), default=sorted(GRIDS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dataset-folder", type=Path, help="a saved dataset (replaces --datasets)")
    parser.add_argument("--validation-sample", type=int, help="score this many validation queries")
    args = parser.parse_args()
    if args.dataset_folder:
        args.datasets = ["folder"]
    spawn = multiprocessing.get_context("spawn")
    for name in args.datasets:
        process = spawn.Process(target=benchmark, args=(name, args))
        process.start()
        process.join()
        if process.exitcode:
            raise SystemExit(f"{name}: the benchmark failed (exit code {process.exitcode})")


if __name__ == "__main__":
    main()
