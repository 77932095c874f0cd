"""next-track candidates: each grid unit fits one family on the train playlists and scores every
scoring variant on the validation queries (see orchestration/assets/grid.py for the steps)."""

import dagster as dg

from ml.datasets.next_track import NextTrackData
from ml.evaluation.candidates import (
    CandidateResult,
    CandidateSpec,
    UnitData,
    results_of_the_same_fit,
    run_unit,
)
from ml.evaluation.halving import Rung, fit_references, screen_candidate
from ml.evaluation.next_track_selection import METRIC_KS
from ml.evaluation.report import table_rows
from ml.recommenders.base import CannotFit
from ml.recommenders.popularity import Popularity
from orchestration.assets.grid import RungHandle, UnitOutcome, candidate_grid
from orchestration.assets.next_track.dataset import DatasetHandle, next_track_dataset
from orchestration.assets.units import log_unit_runs, unit_metadata
from orchestration.config import GRID_ASSETS, CandidateConfig, HalvingConfig, grid_candidates
from orchestration.metadata import for_display
from orchestration.resources import MlflowResource
from orchestration.storage import RunStorage, run_key

EXPERIMENT = "next-track"
# The plain last-track rule reported beside every model so far: the bar to clear, and the
# reference a rung compares each family with.
LAST_TRACK_RULE = CandidateSpec(
    "sequential_rules", {"max_distance": 10}, [{"last_n": 1, "skip_unknown": False}], baseline=True
)
BASELINES = [CandidateSpec("popularity", baseline=True), LAST_TRACK_RULE]
# What a screened family is judged against at the rung: cheap units of the families that made
# up the second stage on the Kaggle-shaped file (docs/ranking.md), each fitted in seconds.
RUNG_REFERENCES = [
    LAST_TRACK_RULE,
    CandidateSpec(
        "session_knn",
        {},
        [{"k": 100, "sample_size": 1000, "last_n": 1, "lambda_item_position": 1.0}],
    ),
    CandidateSpec(
        "slist",
        {"alpha": 0.5, "l2": 100.0, "max_items": 5_000},
        [{"last_n": 10, "recency_decay": 0.8}],
    ),
]


# The grids whose units can go through the rung (each made by ``next_track_grid`` below).
SCREENED_GRIDS = (
    "track_embeddings",
    "sequential_rules_candidates",
    "neighbourhood_candidates",
    "slist_candidates",
)


def grids_screen(run_config: dict, rung: Rung, train_rows: int) -> bool:
    """Whether a grid of this run has units to screen at ``train_rows`` (as ``run_config`` sets
    the grids, else their defaults); when none has, the rung's references would be fitted for
    nothing (at full Kaggle scale every family runs one unit)."""
    for grid in SCREENED_GRIDS:
        specs = [CandidateConfig(**c).spec() for c in grid_candidates(run_config, grid)]
        if rung.screened(specs, train_rows):
            return True
    return False


def grid_unit_data(dataset: DatasetHandle, data: NextTrackData) -> UnitData:
    """What every grid unit and rung reference of a run fits on and is scored against: train,
    the run's validation sample, popularity filling the lists."""
    popularity = Popularity.from_counts(data.catalogue.train_counts)
    return UnitData.next_track(data.train, dataset.sampled_validation(data), popularity, METRIC_KS)


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
    unit_data = grid_unit_data(dataset, data)
    log = context.log.info
    try:
        if rung:
            at_rung = screen_candidate(spec, rung, unit_data, storage, prefix, log)
            results = at_rung.results
        else:
            at_rung = None
            results = run_unit(spec, unit_data, storage, prefix, log)
    except CannotFit as e:
        context.log.warning(f"skipped {spec.unit_name}: {e}")
        return UnitOutcome(spec.unit_name, spec.family, skipped=str(e))
    share = rung.share if rung else None
    log_unit_runs(
        context, mlflow, EXPERIMENT, spec, results, dataset.fingerprint, unit_data.n_items, share
    )
    rows = table_rows(results, 100, None)
    train_rows = at_rung.train_rows if at_rung else len(data.train.items)
    eval_seconds = sum(r.eval_seconds for r in results)
    facts = {
        "train_rows": train_rows,
        "train_rows_per_second": train_rows / max(results[0].fit_seconds, 1e-9),
        "eval_seconds": eval_seconds,
        "queries_per_second": len(unit_data.validation) * len(results) / max(eval_seconds, 1e-9),
    }
    context.add_output_metadata(unit_metadata(results, rows, "hit_rate_at_100", facts))
    return UnitOutcome(spec.unit_name, spec.family, results, rung=at_rung)


@dg.asset(
    description="Successive halving's yardstick: when a grid has units to screen (a family "
    "with two that run on a train split of at least min_train_rows), cheap reference units (the "
    "last-track rule, session-kNN on the last track, SLIST) fitted on the rung's share of train "
    "and scored on the validation sample; otherwise the rung alone (nothing screened) unless "
    "the run has a time budget.",
)
def rung_references(
    context: dg.AssetExecutionContext,
    config: HalvingConfig,
    next_track_dataset: DatasetHandle,
    storage: RunStorage,
) -> RungHandle:
    rung, budget = config.rung(next_track_dataset.seed), config.budget()
    train_rows = next_track_dataset.grid_train_rows
    if budget is None and train_rows < rung.min_train_rows:
        context.log.info(
            f"no screening: {train_rows:,} train rows < min_train_rows {rung.min_train_rows:,}"
        )
        return RungHandle(rung)
    if budget is None and not grids_screen(context.run.run_config, rung, train_rows):
        context.log.info(
            f"no screening: no grid has two units of one family that run at {train_rows:,} "
            "train rows, so no reference is fitted"
        )
        return RungHandle(rung)
    data = next_track_dataset.load(storage)
    unit_data = grid_unit_data(next_track_dataset, data)
    references = fit_references(RUNG_REFERENCES, rung, unit_data, context.log.info)
    key = run_key(context.run.run_id, "rung_references")
    references.save(storage.writable(key))
    storage.commit(key)
    context.add_output_metadata(
        for_display(
            {f"{rung.metric} of {r.name}": r.metrics[rung.metric] for r in references.references}
        )
    )
    return RungHandle(rung, key, budget)


def next_track_grid(name: str, description: str, priority: int = 0) -> dg.AssetsDefinition:
    assert name in SCREENED_GRIDS, f"{name}: a grid that screens is one rung_references knows"
    return candidate_grid(
        name=name,
        default=GRID_ASSETS[name],
        description=description,
        dataset=next_track_dataset,
        handle_type=DatasetHandle,
        fit_unit=fit_and_log,
        k=100,
        priority=priority,
        screening=(fit_and_log, rung_references),
    )


# Word2Vec's units train longest, so they start first and the other families fill the other
# core; started last, they ran alone while a core idled (docs/constants.md).
track_embeddings = next_track_grid(
    "track_embeddings",
    "Word2Vec track embeddings, one step per hyperparameter set, each scored with every query "
    "variant (in-in and input-to-output, last track or recency-weighted playlist) on validation.",
    priority=1,
)
sequential_rules_candidates = next_track_grid(
    "sequential_rules_candidates",
    "Sequential rules over the last n tracks of the playlist, weighted by recency.",
)

neighbourhood_candidates = next_track_grid(
    "neighbourhood_candidates",
    "Item co-occurrence kNN and the session-kNN family (SKNN, V-SKNN, STAN, VSTAN) on sparse "
    "matrices.",
)

slist_candidates = next_track_grid(
    "slist_candidates",
    "SLIST (Choi et al., WWW 2021): one linear item-item model of what playlists hold and what "
    "follows what, in closed form, over the most played tracks.",
)


@dg.asset(
    description="The baselines every candidate must beat, on the same validation queries: most "
    "popular, and sequential rules on the last track only (taken from the rules grid when one of "
    "its units fitted that model in full: the same figures without a second fit).",
)
def next_track_baseline_candidates(
    context: dg.AssetExecutionContext,
    next_track_dataset: DatasetHandle,
    sequential_rules_candidates: list[UnitOutcome],
    storage: RunStorage,
    mlflow: MlflowResource,
) -> list[UnitOutcome]:
    fitted_in_full = [
        r
        for o in sequential_rules_candidates
        if o.rung is None and not o.skipped
        for r in o.results
    ]
    return [
        baseline_outcome(context, spec, fitted_in_full, next_track_dataset, storage, mlflow)
        for spec in BASELINES
    ]


def baseline_outcome(
    context: dg.AssetExecutionContext,
    spec: CandidateSpec,
    fitted_in_full: list[CandidateResult],
    dataset: DatasetHandle,
    storage: RunStorage,
    mlflow: MlflowResource,
) -> UnitOutcome:
    """``spec`` fitted and scored here, unless a grid unit fitted in full on the same train split
    and scored on the same validation sample already holds its results."""
    reused = results_of_the_same_fit(spec, fitted_in_full)
    if reused is None:
        return fit_and_log(context, spec, dataset, storage, mlflow)
    context.log.info(
        f"{spec.unit_name}: the grid's {reused[0].unit} is the same model, fitted in full on the "
        "same train split and scored on the same queries; its results are taken, not fitted again"
    )
    log_unit_runs(
        context, mlflow, EXPERIMENT, spec, reused, dataset.fingerprint, dataset.summary["tracks"]
    )
    facts = {"fitted_by": reused[0].unit}
    context.add_output_metadata(
        unit_metadata(reused, table_rows(reused, 100, None), "hit_rate_at_100", facts)
    )
    return UnitOutcome(spec.unit_name, spec.family, reused)
