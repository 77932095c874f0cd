"""The candidate grid as Dagster steps, for either use case: every family x fit hyperparameters is
its own step (dynamic outputs), so the UI shows each one's status and metrics, a failed one
retries alone, and an executor with more processes (or Kubernetes pods) runs them in parallel
without code changes. What a step does is the use case's ``fit_unit``.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg
from pydantic import Field

from ml.evaluation.candidates import CandidateResult, CandidateSpec
from ml.evaluation.report import table_rows
from orchestration.config import CandidateConfig, GridConfig
from orchestration.metadata import rows_table
from orchestration.resources import MlflowResource
from orchestration.settings import WORKER_NAME
from orchestration.storage import RunStorage

CELERY_DEFAULT_PRIORITY = 5  # dagster-celery's task_default_priority


@dataclass
class UnitOutcome:
    """What one grid step produced: a row per scoring variant, or why it could not fit."""

    unit: str
    family: str
    results: list[CandidateResult] = field(default_factory=list)
    skipped: str | None = None


FitUnit = Callable[
    [dg.OpExecutionContext, CandidateSpec, object, RunStorage, MlflowResource], UnitOutcome
]


def candidate_grid(
    name: str,
    default: list[dict],
    description: str,
    group: str,
    dataset: dg.AssetsDefinition,
    handle_type: type,
    fit_unit: FitUnit,
    k: int,
    priority: int = 0,
) -> dg.AssetsDefinition:
    """A graph asset over ``dataset``: plan the grid from run config, fit every unit as its own
    step, collect the outcomes. Steps of a grid with a higher ``priority`` start first when
    several are ready: ``dagster/priority`` for the multiprocess executor, and
    ``dagster-celery/priority`` (added to Celery's default, 5) for the Celery executor, which
    submits ready steps in that order."""
    tags = {
        "dagster/priority": str(priority),
        "dagster-celery/priority": str(CELERY_DEFAULT_PRIORITY + priority),
    }

    class Grid(GridConfig):
        candidates: list[CandidateConfig] = Field(
            default=default, description="Grid units: family, params, scoring variants."
        )

    @dg.op(
        name=f"{name}__plan",
        ins={"dataset": dg.In(handle_type)},
        out=dg.DynamicOut(CandidateSpec),
        tags=tags,
    )
    def plan(context: dg.OpExecutionContext, config: Grid, dataset):
        # Entries arrive as plain dicts through the graph's config mapping.
        specs = [CandidateConfig.model_validate(dict(c)).spec() for c in config.candidates]
        names = [spec.unit_name for spec in specs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise dg.Failure(f"{name}: the grid repeats {duplicates}", allow_retries=False)
        for spec in specs:
            spec.validate()
            yield dg.DynamicOutput(spec, mapping_key=spec.unit_name)
        context.log.info(f"{name}: {len(specs)} units")

    @dg.op(
        name=f"{name}__fit",
        ins={"dataset": dg.In(handle_type), "spec": dg.In(CandidateSpec)},
        retry_policy=dg.RetryPolicy(max_retries=1, delay=5),
        tags=tags,
    )
    def fit(
        context: dg.OpExecutionContext, dataset, spec, storage: RunStorage, mlflow: MlflowResource
    ) -> UnitOutcome:
        return fit_unit(context, spec, dataset, storage, mlflow)

    @dg.op(name=f"{name}__collect")
    def collect(context: dg.OpExecutionContext, outcomes: list[UnitOutcome]) -> list[UnitOutcome]:
        results = [r for o in outcomes for r in o.results]
        context.add_output_metadata(
            {
                "validation": rows_table(table_rows(results, k, None)),
                "skipped": dg.MetadataValue.json(
                    {o.unit: o.skipped for o in outcomes if o.skipped}
                ),
                "worker": WORKER_NAME,
            }
        )
        return outcomes

    def route(config: dict) -> dict:
        return {f"{name}__plan": {"config": config}}

    @dg.graph_asset(
        name=name,
        group_name=group,
        description=description,
        ins={"dataset": dg.AssetIn(dataset.key)},
        config=dg.ConfigMapping(config_fn=route, config_schema=Grid.to_config_schema()),
    )
    def grid_asset(dataset) -> list[UnitOutcome]:
        specs = plan(dataset)
        return collect(specs.map(lambda spec: fit(dataset, spec)).collect())

    return grid_asset
