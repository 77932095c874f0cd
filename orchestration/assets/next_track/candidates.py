"""The candidate grid: every family x fit hyperparameters is its own Dagster step (dynamic
outputs), so the UI shows each one's status and metrics, a failed one retries alone, and an
executor with more processes (or Kubernetes pods) runs them in parallel without code changes.
"""

from dataclasses import dataclass, field

import dagster as dg
from pydantic import Field

from ml.evaluation.candidates import CandidateResult, CandidateSpec, run_candidate
from ml.evaluation.report import markdown_table, table_rows
from ml.recommenders.base import CannotFit
from ml.recommenders.popularity import Popularity
from ml.registry import log_child_run
from orchestration.assets.next_track.dataset import DatasetHandle
from orchestration.config import (
    NEIGHBOURHOOD_GRID,
    SEQUENTIAL_RULES_GRID,
    WORD2VEC_GRID,
    CandidateConfig,
    GridConfig,
)
from orchestration.resources import MlflowResource, RunStore

EXPERIMENT = "next-track"
METRIC_KS = (1, 5, 10, 20, 50, 100)
BASELINES = [
    CandidateSpec("popularity", baseline=True),
    # The plain last-track rule reported beside every model so far: the bar to clear.
    CandidateSpec(
        "sequential_rules",
        {"max_distance": 10},
        [{"last_n": 1, "skip_unknown": False}],
        baseline=True,
    ),
]


@dataclass
class UnitOutcome:
    """What one grid step produced: a row per scoring variant, or why it could not fit."""

    unit: str
    family: str
    results: list[CandidateResult] = field(default_factory=list)
    skipped: str | None = None


def fit_and_log(
    context: dg.OpExecutionContext,
    spec: CandidateSpec,
    dataset: DatasetHandle,
    run_store: RunStore,
    mlflow: MlflowResource,
) -> UnitOutcome:
    data = dataset.load()
    validation = data.validation.sample(dataset.validation_sample, dataset.seed)
    popularity = Popularity(n_items=len(data.catalogue))
    popularity.counts = data.catalogue.train_counts
    out_dir = run_store.run_dir(context.run.run_id) / "candidates"
    try:
        results = run_candidate(
            spec, data.train, validation, popularity, out_dir, METRIC_KS, context.log.info
        )
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
            result.name,
            {"family": result.family, **result.params},
            {
                **{f"validation_{k}": v for k, v in result.metrics.items()},
                "fit_seconds": result.fit_seconds,
                "eval_seconds": result.eval_seconds,
                "catalogue_size": float(popularity.n_items),
                **result.facts,
            },
            {
                "kind": "baseline" if result.baseline else "candidate",
                "family": result.family,
                "unit": result.unit,
                "dagster_run_id": context.run.run_id,
                "data_fingerprint": dataset.fingerprint,
            },
        )
    rows = table_rows(results, 100, None)
    eval_seconds = sum(r.eval_seconds for r in results)
    context.add_output_metadata(
        {
            "candidates": len(results),
            "fit_seconds": results[0].fit_seconds,
            "train_rows_per_second": len(data.train.items) / max(results[0].fit_seconds, 1e-9),
            "eval_seconds": eval_seconds,
            "queries_per_second": len(validation) * len(results) / max(eval_seconds, 1e-9),
            "best_validation_hit_rate_at_100": max(r.metrics["hit_rate_at_100"] for r in results),
            "validation": dg.MetadataValue.md(markdown_table(rows)),
        }
    )
    return UnitOutcome(spec.unit_name, spec.family, results)


def outcome_table(outcomes: list[UnitOutcome]) -> str:
    results = [r for o in outcomes for r in o.results]
    skipped = [f"- {o.unit}: {o.skipped}" for o in outcomes if o.skipped]
    table = markdown_table(table_rows(results, 100, None))
    return table + ("\n\nSkipped:\n" + "\n".join(skipped) if skipped else "")


def candidate_grid(name: str, default: list[dict], description: str) -> dg.AssetsDefinition:
    """A graph asset: plan the grid from run config, fit every unit as its own step, collect."""

    class Grid(GridConfig):
        candidates: list[CandidateConfig] = Field(
            default=default, description="Grid units: family, params, scoring variants."
        )

    @dg.op(name=f"{name}__plan", out=dg.DynamicOut(CandidateSpec))
    def plan(context: dg.OpExecutionContext, config: Grid, next_track_dataset: DatasetHandle):
        # Entries arrive as plain dicts through the graph's config mapping.
        specs = [CandidateConfig.model_validate(dict(c)).spec() for c in config.candidates]
        names = [spec.unit_name for spec in specs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise dg.Failure(f"{name}: the grid repeats {duplicates}", allow_retries=False)
        for spec in specs:
            spec.validate()
            yield dg.DynamicOutput(spec, mapping_key=spec.unit_name)
        context.log.info(f"{name}: {len(specs)} units on {next_track_dataset.summary}")

    @dg.op(name=f"{name}__fit", retry_policy=dg.RetryPolicy(max_retries=1, delay=5))
    def fit(
        context: dg.OpExecutionContext,
        next_track_dataset: DatasetHandle,
        spec: CandidateSpec,
        run_store: RunStore,
        mlflow: MlflowResource,
    ) -> UnitOutcome:
        return fit_and_log(context, spec, next_track_dataset, run_store, mlflow)

    @dg.op(name=f"{name}__collect")
    def collect(context: dg.OpExecutionContext, outcomes: list[UnitOutcome]) -> list[UnitOutcome]:
        context.add_output_metadata({"validation": dg.MetadataValue.md(outcome_table(outcomes))})
        return outcomes

    def route(config: dict) -> dict:
        return {f"{name}__plan": {"config": config}}

    @dg.graph_asset(
        name=name,
        group_name="next_track",
        description=description,
        config=dg.ConfigMapping(config_fn=route, config_schema=Grid.to_config_schema()),
    )
    def grid_asset(next_track_dataset: DatasetHandle) -> list[UnitOutcome]:
        specs = plan(next_track_dataset)
        return collect(specs.map(lambda spec: fit(next_track_dataset, spec)).collect())

    return grid_asset


track_embeddings = candidate_grid(
    "track_embeddings",
    WORD2VEC_GRID,
    "Word2Vec track embeddings, one step per hyperparameter set, each scored with every query "
    "variant (in-in and input-to-output, last track or recency-weighted playlist) on validation.",
)
sequential_rules_candidates = candidate_grid(
    "sequential_rules_candidates",
    SEQUENTIAL_RULES_GRID,
    "Sequential rules over the last n tracks of the playlist, weighted by recency.",
)

neighbourhood_candidates = candidate_grid(
    "neighbourhood_candidates",
    NEIGHBOURHOOD_GRID,
    "Item co-occurrence kNN and the session-kNN family (SKNN, V-SKNN, STAN, VSTAN) on sparse "
    "matrices.",
)


@dg.asset(
    group_name="next_track",
    description="The baselines every candidate must beat, on the same validation queries: most "
    "popular, and sequential rules on the last track only.",
)
def baseline_candidates(
    context: dg.AssetExecutionContext,
    next_track_dataset: DatasetHandle,
    run_store: RunStore,
    mlflow: MlflowResource,
) -> list[UnitOutcome]:
    return [fit_and_log(context, spec, next_track_dataset, run_store, mlflow) for spec in BASELINES]
