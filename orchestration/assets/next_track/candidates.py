"""next-track candidates: each grid unit fits one family on the train playlists and scores every
scoring variant on the validation queries (see orchestration/assets/grid.py for the steps)."""

import dagster as dg

from ml.evaluation.candidates import CandidateSpec, run_candidate
from ml.evaluation.halving import Rung, screen_candidate
from ml.evaluation.report import table_rows
from ml.recommenders.base import CannotFit
from ml.recommenders.popularity import Popularity
from ml.registry import log_child_run
from orchestration.assets.grid import UnitOutcome, candidate_grid
from orchestration.assets.next_track.dataset import DatasetHandle, next_track_dataset
from orchestration.config import (
    NEIGHBOURHOOD_GRID,
    SEQUENTIAL_RULES_GRID,
    SLIST_GRID,
    WORD2VEC_GRID,
)
from orchestration.metadata import for_display, rows_table
from orchestration.resources import MlflowResource
from orchestration.settings import WORKER_NAME
from orchestration.storage import RunStorage, run_key

EXPERIMENT = "next-track"
METRIC_KS = (1, 5, 10, 20, 50, 100)
# The plain last-track rule reported beside every model so far: the bar to clear, and the
# reference a rung compares each family with.
LAST_TRACK_RULE = CandidateSpec(
    "sequential_rules", {"max_distance": 10}, [{"last_n": 1, "skip_unknown": False}], baseline=True
)
BASELINES = [CandidateSpec("popularity", baseline=True), LAST_TRACK_RULE]


def fit_and_log(
    context: dg.OpExecutionContext,
    spec: CandidateSpec,
    dataset: DatasetHandle,
    storage: RunStorage,
    mlflow: MlflowResource,
    rung: Rung | None = None,
) -> UnitOutcome:
    """Fit ``spec`` on the train split (at a ``rung``: on its share of it), score it on the
    validation sample, log each variant as a child run of the pipeline's MLflow run."""
    prefix = run_key(context.run.run_id, "rungs" if rung else "candidates")
    storage.ensure_space(prefix)  # before the fit, not after it
    data = dataset.load(storage)
    validation = dataset.sampled_validation(data)
    popularity = Popularity.from_counts(data.catalogue.train_counts)
    try:
        if rung:
            at_rung = screen_candidate(
                spec, LAST_TRACK_RULE, rung, data.train, validation, popularity, storage, prefix,
                METRIC_KS, context.log.info,
            )  # fmt: skip
            results = at_rung.results
        else:
            at_rung = None
            results = run_candidate(
                spec, data.train, validation, popularity, storage, prefix, METRIC_KS,
                context.log.info,
            )  # fmt: skip
    except CannotFit as e:
        context.log.warning(f"skipped {spec.unit_name}: {e}")
        return UnitOutcome(spec.unit_name, spec.family, skipped=str(e))
    parent = mlflow.parent_run(EXPERIMENT, context)
    experiment_id = mlflow.experiment_id(EXPERIMENT)
    client = mlflow.client()
    for result in results:
        log_child_run(
            client,
            experiment_id,
            parent,
            f"{result.name} (rung: {rung.share:.0%} of train)" if rung else result.name,
            {
                "family": result.family,
                **result.params,
                **({"rung_share": rung.share} if rung else {}),
            },
            {
                **{f"validation_{k}": v for k, v in result.metrics.items()},
                "fit_seconds": result.fit_seconds,
                "eval_seconds": result.eval_seconds,
                "catalogue_size": float(popularity.n_items),
                **result.facts,
            },
            {
                "kind": "rung" if rung else ("baseline" if result.baseline else "candidate"),
                "family": result.family,
                "unit": result.unit,
                "dagster_run_id": context.run.run_id,
                "data_fingerprint": dataset.fingerprint,
                "worker": WORKER_NAME,
            },
        )
    rows = table_rows(results, 100, None)
    train_rows = at_rung.train_rows if at_rung else len(data.train.items)
    eval_seconds = sum(r.eval_seconds for r in results)
    context.add_output_metadata(
        for_display(
            {
                "candidates": len(results),
                "fit_seconds": results[0].fit_seconds,
                "train_rows": train_rows,
                "train_rows_per_second": train_rows / max(results[0].fit_seconds, 1e-9),
                "eval_seconds": eval_seconds,
                "queries_per_second": len(validation) * len(results) / max(eval_seconds, 1e-9),
                "best_validation_hit_rate_at_100": max(
                    r.metrics["hit_rate_at_100"] for r in results
                ),
                "validation": rows_table(rows),
                "worker": WORKER_NAME,
            }
        )
    )
    return UnitOutcome(spec.unit_name, spec.family, results, rung=at_rung)


def next_track_grid(
    name: str, default: list[dict], description: str, priority: int = 0
) -> dg.AssetsDefinition:
    return candidate_grid(
        name, default, description, "next_track", next_track_dataset, DatasetHandle,
        fit_and_log, 100, priority, screen_unit=fit_and_log,
    )  # fmt: skip


# Word2Vec's units train longest, so they start first and the other families fill the other
# core; started last, they ran alone while a core idled (docs/constants.md).
track_embeddings = next_track_grid(
    "track_embeddings",
    WORD2VEC_GRID,
    "Word2Vec track embeddings, one step per hyperparameter set, each scored with every query "
    "variant (in-in and input-to-output, last track or recency-weighted playlist) on validation.",
    priority=1,
)
sequential_rules_candidates = next_track_grid(
    "sequential_rules_candidates",
    SEQUENTIAL_RULES_GRID,
    "Sequential rules over the last n tracks of the playlist, weighted by recency.",
)

neighbourhood_candidates = next_track_grid(
    "neighbourhood_candidates",
    NEIGHBOURHOOD_GRID,
    "Item co-occurrence kNN and the session-kNN family (SKNN, V-SKNN, STAN, VSTAN) on sparse "
    "matrices.",
)

slist_candidates = next_track_grid(
    "slist_candidates",
    SLIST_GRID,
    "SLIST (Choi et al., WWW 2021): one linear item-item model of what playlists hold and what "
    "follows what, in closed form, over the most played tracks.",
)


@dg.asset(
    group_name="next_track",
    description="The baselines every candidate must beat, on the same validation queries: most "
    "popular, and sequential rules on the last track only.",
)
def baseline_candidates(
    context: dg.AssetExecutionContext,
    next_track_dataset: DatasetHandle,
    storage: RunStorage,
    mlflow: MlflowResource,
) -> list[UnitOutcome]:
    return [fit_and_log(context, spec, next_track_dataset, storage, mlflow) for spec in BASELINES]
