"""User -> items on MovieLens-100k with the published protocol, end to end on the real files.

Protocol: users with >= 20 interactions; a global time split, the last 20% of the time range as
test and the 20% before it as validation; labels of cold users and items dropped; labels need
rating >= 4. Families: popularity, EASE, item-kNN, two-tower. Steps: ingest the RecBole files,
`dbt build --selector user_items` into a temporary NEXT_TRACK_DATA_DIR (as tests/test_dbt.py
does), read the folds, fit every candidate on train and score it on validation, choose the best
validation NDCG@10, refit it on train + validation and score it once on test beside popularity.
Each fit runs in a fresh process, so its peak RSS is its own (interpreter and imports included).

    .venv/bin/python benchmarks/bench_user_items.py [--source ../shared/data/movielens_100k]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = {
    "min_user_interactions": 20,
    "interactions_split": "time_range",
    "test_share": 0.2,
    "validation_share": 0.2,
    "relevance_min_rating": 4,
}
PUBLISHED_TWO_TOWER = {"ndcg_at_10": 0.0345, "hit_rate_at_10": 0.221, "coverage_at_10": 0.191}
# The published two-tower's configuration: 30 epochs, no early stopping, no recency.
PUBLISHED_PARAMS = {"embedding_dim": 16, "negatives": 10, "epochs": 30, "patience": 0}
TUNED = {"batch_size": 256, "epochs": 60, "item_bias": True, "weight_decay": 0.01}
CANDIDATES: list[tuple[str, dict[str, Any]]] = [
    ("popularity", {}),
    *[("ease", {"l2": l2}) for l2 in (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)],
    # item-kNN over the user's whole history (last_n beyond any history, no decay)
    *[("item_knn", {"neighbours": n, "last_n": 10_000, "recency_decay": 1.0}) for n in (200, 1000)],
    ("two_tower", PUBLISHED_PARAMS),
    ("two_tower", TUNED),
    *[("two_tower", {**TUNED, "half_life_days": days}) for days in (7.0, 10.0, 14.0)],
    ("two_tower", {**TUNED, "half_life_days": 14.0, "embedding_dim": 32}),
    ("two_tower", {**TUNED, "half_life_days": 14.0, "loss": "bpr"}),
    ("two_tower", {**TUNED, "item_features": True}),
    ("two_tower", {**TUNED, "item_features": True, "half_life_days": 7.0}),
]
# Ranking-only variants scored on every fit of a family: the two-tower with a time-decayed
# popularity prior of these weights, item-kNN with recent history items weighted more.
VARIANTS = {
    "two_tower": [{"recency_prior": weight} for weight in (0.0, 0.25, 0.5, 1.0)],
    "item_knn": [{"recency_decay": decay} for decay in (1.0, 0.99)],
}
COLUMNS = ["ndcg_at_10", "hit_rate_at_10", "recall_at_10", "coverage_at_10"]


def fit_in_fresh_process(
    fold_dir: str, family: str, params: dict, early_stopping: bool, variants: list[dict]
) -> list[dict]:
    """Runs in its own process: fit, score every variant on the saved fold; the peak RSS."""
    from ml.datasets.user_items import UserItemsFold
    from ml.evaluation.user_items import run_on_fold

    fold = UserItemsFold.load(Path(fold_dir))
    _, results = run_on_fold(family, params, fold, early_stopping=early_stopping, variants=variants)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return [{**asdict(result), "peak_rss_mib": peak_mib} for result in results]


def run(
    fold_dir: Path, family: str, params: dict, early_stopping: bool = True, variants=None
) -> list[dict]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, max_tasks_per_child=1) as pool:
        future = pool.submit(
            fit_in_fresh_process, str(fold_dir), family, params, early_stopping, variants or [{}]
        )
        return future.result()


def dbt_build(data_dir: Path) -> None:
    command = [
        str(Path(sys.executable).parent / "dbt"),
        "build",
        "--project-dir",
        "dbt_project",
        "--profiles-dir",
        "profiles",
        "--selector",
        "user_items",
        "--vars",
        json.dumps(PROTOCOL),
    ]
    env = {**os.environ, "NEXT_TRACK_DATA_DIR": str(data_dir)}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"dbt build failed:\n{result.stdout[-3000:]}")


def table(rows: list[tuple[str, dict]], extra: list[str]) -> str:
    header = ["model", *COLUMNS, *extra]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for name, row in rows:
        cells = [f"{row[c]:.4f}" if isinstance(row.get(c), float) else "" for c in COLUMNS]
        cells += [f"{row[c]:.1f}" if isinstance(row.get(c), float) else "" for c in extra]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source", type=Path, default=REPO_ROOT.parent / "shared/data/movielens_100k"
    )
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()

    from ml.datasets.user_items import read_user_items_data
    from ml.evaluation.user_items import FoldResult, best
    from ml.sources.interactions import ingest_interactions

    with tempfile.TemporaryDirectory(prefix="bench-user-items-") as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        report = ingest_interactions(args.source, data_dir / "raw")
        ingest_seconds = time.perf_counter() - started
        started = time.perf_counter()
        dbt_build(data_dir)
        dbt_seconds = time.perf_counter() - started
        data = read_user_items_data(data_dir / "warehouse.duckdb")
        folds = {}
        for fold in (data.validation, data.test):
            folds[fold.name] = data_dir / "folds" / fold.name
            fold.save(folds[fold.name])
        print(f"ingest {ingest_seconds:.1f} s: {report.summary()}")
        print(f"dbt build --selector user_items {dbt_seconds:.1f} s; vars {PROTOCOL}")
        print(f"validation fold: {data.validation.summary()}")
        print(f"test fold: {data.test.summary()}\n", flush=True)

        validation = []
        for family, params in CANDIDATES:
            for row in run(folds["validation"], family, params, variants=VARIANTS.get(family)):
                validation.append(row)
                figures = ", ".join(f"{c} {row['metrics'][c]:.4f}" for c in COLUMNS)
                print(f"{row['name']}: {figures}, {row['fit_seconds']:.1f} s", flush=True)
        results = [
            FoldResult(**{k: v for k, v in r.items() if k != "peak_rss_mib"}) for r in validation
        ]
        chosen = best(results)
        print(f"\nselected on validation NDCG@10: {chosen.name}", flush=True)
        test = {
            "selected": run(folds["test"], chosen.family, chosen.params, early_stopping=False)[0],
            "popularity": run(folds["test"], "popularity", {}, early_stopping=False)[0],
        }

    extra = ["fit_seconds", "peak_rss_mib"]
    print("\nValidation (fit on train, scored on validation):\n")
    print(table([(r["name"], {**r["metrics"], **r}) for r in validation], extra))
    print("\nTest (refit on train + validation, scored once on test):\n")
    rows = [(f"{r['name']} ({role})", {**r["metrics"], **r}) for role, r in test.items()]
    rows.append(("published two-tower", PUBLISHED_TWO_TOWER))
    print(table(rows, extra))
    selected, popular = test["selected"]["metrics"], test["popularity"]["metrics"]
    verdicts = [
        f"{c}: {selected[c]:.4f} vs popularity {popular[c]:.4f}, published "
        f"{PUBLISHED_TWO_TOWER.get(c, float('nan')):.4f}"
        for c in COLUMNS
    ]
    print("\n" + "\n".join(verdicts))
    if args.json:
        args.json.write_text(
            json.dumps({"protocol": PROTOCOL, "validation": validation, "test": test}, indent=2)
        )


if __name__ == "__main__":
    main()
