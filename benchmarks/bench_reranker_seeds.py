"""How far the reranker's own seed moves its figures, on a pipeline run's own data. Not a test:

    python benchmarks/bench_reranker_seeds.py RUN_DATA [--seeds 0 1 2 3 4]

RUN_DATA is a pipeline's data folder (``$NEXT_TRACK_DATA_DIR``, or a ``make bench-scale
--keep-data`` folder); its newest run that built a reranker is read. For each seed, that run's
reranker components (fitted on train) learn a ranker on every validation query, as
``next_track_candidate_metrics`` does on its validation sample (the same where validation fits in
the sample); its out-of-fold validation figures are reported, then it refits on train +
validation and is scored on test, as ``next_track_selected_model`` does. The seed draws the
folds, the early-stopping queries, the queries cut from histories kept beyond
``max_cut_queries``, the sampled negatives, and (past 200,000 rows) the rows LightGBM samples to
place its feature bins. Prints JSON, a line per seed, then the mean, least and most of each
figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from ml.datasets.next_track import NextTrackData
from ml.evaluation.candidates import evaluate, evaluate_lists
from ml.evaluation.next_track_selection import METRIC_KS
from ml.recommenders.families import load_recommender
from ml.recommenders.popularity import Popularity
from ml.recommenders.reranker import Reranker

REPORTED = ("hit_rate_at_10", "hit_rate_at_100", "mrr_at_100", "ndcg_at_10")


def newest_run_with_a_reranker(run_data: Path) -> Path:
    """The newest run folder holding both its dataset and a reranker: the two from one run."""
    folders = sorted(
        (
            folder
            for folder in run_data.glob("runs/*")
            if (folder / "dataset").is_dir() and (folder / "candidates" / "reranker").is_dir()
        ),
        key=lambda folder: (folder / "candidates" / "reranker").stat().st_mtime,
    )
    if not folders:
        raise SystemExit(f"no run under {run_data}/runs built a reranker")
    return folders[-1]


def figures_of_seed(data: NextTrackData, saved_reranker: Path, seed: int) -> dict[str, object]:
    """A ranker learned with ``seed`` over a fresh copy of the run's components (each seed's
    refit changes them)."""
    saved = load_recommender(saved_reranker)
    params = {
        f.name: getattr(saved.params, f.name)
        for f in dataclasses.fields(saved.params)
        if f.name not in ("components", "seed")
    }
    ranker = Reranker.of(saved.parts, saved.artists, saved.vectors, seed=seed, **params)
    ranker.statistics = saved.statistics  # train's counts, as the run computed them
    popularity = Popularity.from_counts(data.catalogue.train_counts)
    lists = ranker.component_lists(data.validation.queries)
    learned = ranker.learn(lists, data.validation)
    validation, _ = evaluate_lists(
        learned.head(max(METRIC_KS)), data.validation, popularity, METRIC_KS
    )
    ranker.fit(data.train_and_validation().sequences)
    test, _ = evaluate(ranker, data.test, popularity, METRIC_KS)
    return {
        "seed": seed,
        "model": ranker.name,
        **{f"validation_{name}": round(validation[name], 4) for name in REPORTED},
        **{f"test_{name}": round(test[name], 4) for name in REPORTED},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_data", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    run = newest_run_with_a_reranker(args.run_data)
    data = NextTrackData.load(run / "dataset")
    saved_reranker = run / "candidates" / "reranker"
    rows = []
    for seed in args.seeds:
        rows.append(figures_of_seed(data, saved_reranker, seed))
        print(json.dumps(rows[-1]), flush=True)
    spread = {}
    for key in rows[0]:
        if key.startswith(("validation_", "test_")):
            values = np.array([row[key] for row in rows])
            spread[key] = {
                "mean": round(float(values.mean()), 4),
                "least": float(values.min()),
                "most": float(values.max()),
            }
    print(json.dumps({"seeds": args.seeds, "spread": spread}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
