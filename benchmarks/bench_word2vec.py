"""One Word2Vec fit on a pipeline run's own split, by gensim worker threads: seconds, CPU seconds
and validation hit rate on the same seed. Not a test:

    python benchmarks/bench_word2vec.py RUN_DATA [--params '{"sg": 1}']
        [--variant '{"scoring": "in_out"}'] [--workers 1 2]

RUN_DATA is a pipeline's data folder (``$NEXT_TRACK_DATA_DIR``, or a ``make bench-scale
--keep-data`` folder): the newest run's ``dataset`` under it is read, the encoded train split
and validation sample the grid itself used. ``--params`` are Word2Vec's (``{}``: the reference
tutorial's CBOW, 30 epochs); ``--variant`` the query (default the tutorial's own: the last
track, heard tracks kept). The fit is what a grid unit pays: the corpus file written, then gensim
trained on it.
``bench_scale.py`` runs it for its "tutorial's Word2Vec" line. Prints JSON, a line per fit.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from ml.datasets.next_track import NextTrackData
from ml.evaluation.candidates import evaluate
from ml.recommenders.families import create
from ml.recommenders.popularity import Popularity
from ml.recommenders.word2vec import TUTORIAL_VARIANT

REPORTED = ("hit_rate_at_10", "hit_rate_at_100", "mrr_at_100", "ndcg_at_10")


def newest_dataset(run_data: Path) -> Path:
    folders = sorted(run_data.glob("runs/*/dataset"), key=lambda folder: folder.stat().st_mtime)
    if not folders:
        raise SystemExit(f"no runs/*/dataset under {run_data}: run the pipeline there first")
    return folders[-1]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fit_and_score(
    data: NextTrackData, params: dict, workers: int, variant: dict = TUTORIAL_VARIANT
) -> dict:
    popularity = Popularity.from_counts(data.catalogue.train_counts)
    model = create("word2vec", {**params, "workers": workers}, popularity.n_items)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    model.fit(data.train)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    metrics, _ = evaluate(model.with_scoring(**variant), data.validation, popularity)
    return {
        "model": model.params.fit_name,
        "workers": workers,
        "fit_seconds": round(seconds, 1),
        "fit_cpu_seconds": round(cpu, 1),
        "train_rows": len(data.train.items),
        "validation_queries": len(data.validation),
        **{name: round(metrics[name], 4) for name in REPORTED},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_data", type=Path)
    parser.add_argument("--params", type=json.loads, default={})
    parser.add_argument("--variant", type=json.loads, default=TUTORIAL_VARIANT)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    data = NextTrackData.load(newest_dataset(args.run_data))
    for workers in args.workers:
        print(json.dumps(fit_and_score(data, args.params, workers, args.variant)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
