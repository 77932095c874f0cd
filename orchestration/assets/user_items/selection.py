"""user-items selection on validation (NDCG@10 by default), and the gate: beat popularity."""

import dagster as dg

from ml.evaluation.candidates import CandidateResult
from ml.evaluation.ranking import ranked
from ml.evaluation.report import USER_ITEMS_COLUMNS, plot_validation_bars, table_rows
from ml.evaluation.user_items import best
from ml.recommenders.base import Log
from orchestration.assets.grid import UnitOutcome
from orchestration.assets.selection import (
    GridResults,
    Selection,
    SelectionReport,
    report_selection,
)
from orchestration.assets.user_items.candidates import (
    EXPERIMENT,
    user_items_baseline_candidates,
    user_items_candidates,
)
from orchestration.assets.user_items.dataset import UserItemsDatasetHandle
from orchestration.config import UserItemsSelectionConfig
from orchestration.resources import MlflowResource
from orchestration.storage import RunStorage, run_key

TIEBREAK = "hit_rate_at_10"


def best_above_floor(
    models: list[CandidateResult], config: UserItemsSelectionConfig, warn: Log
) -> tuple[CandidateResult, bool]:
    """The best on the config's metric among those whose coverage reaches the floor (else among
    all, warned), and whether the floor was met."""
    try:
        return best(models, config.min_coverage, config.metric), True
    except ValueError as e:
        warn(f"{e}: selecting on {config.metric} alone")
        return best(models, 0.0, config.metric), False


def validation_selection(
    config: UserItemsSelectionConfig,
    grid: GridResults,
    selected: CandidateResult,
    users: int,
    plot: str,
) -> Selection:
    """The hand-over: ``selected`` among the grid's results, the validation table in selection
    order (``plot`` its bars), the gate beside popularity."""
    rows = table_rows(
        ranked(grid.results, config.metric, TIEBREAK), 10, selected.name, USER_ITEMS_COLUMNS
    )
    return Selection(
        metric=config.metric,
        tiebreak=TIEBREAK,
        selected=selected,
        baselines=[r for r in grid.results if r.baseline],
        rows=rows,
        plots={"validation": plot},
        validation_sample=users,
        validation_queries=users,
        min_validation_queries=config.min_validation_users,
        gate_metrics=(config.metric,),
        ties_pass=False,
    )


def run_params(dataset: UserItemsDatasetHandle, selected: CandidateResult, users: int) -> dict:
    """The pipeline's MLflow run params: the data and what was selected."""
    return {
        "source": dataset.source,
        "sample_percent": dataset.sample_percent,
        "split_method": dataset.split_method,
        "selected_candidate": selected.name,
        "selected_family": selected.family,
        "validation_users": users,
    }


@dg.asset(
    ins={
        "candidates": dg.AssetIn(user_items_candidates.key),
        "baseline": dg.AssetIn(user_items_baseline_candidates.key),
    },
    kinds={"mlflow"},
    description="Every user-items candidate and the popularity baseline on validation; the "
    "best by NDCG@10 (configurable) among those whose coverage@10 reaches the floor is selected.",
)
def user_items_candidate_metrics(
    context: dg.AssetExecutionContext,
    config: UserItemsSelectionConfig,
    candidates: list[UnitOutcome],
    baseline: list[UnitOutcome],
    user_items_dataset: UserItemsDatasetHandle,
    storage: RunStorage,
    mlflow: MlflowResource,
) -> Selection:
    dataset, grid = user_items_dataset, GridResults.of([*candidates, *baseline])
    models = [r for r in grid.results if not r.baseline]
    selected, floor_met = best_above_floor(models, config, context.log.warning)
    plot = run_key(context.run.run_id, "plots", "user_items.png")
    users = dataset.summary["validation"]["queries"]
    selection = validation_selection(config, grid, selected, users, plot)
    plot_validation_bars(selection.rows, config.metric, storage.writable(plot))
    report = SelectionReport(
        experiment=EXPERIMENT,
        params=run_params(dataset, selected, users),
        selection=selection,
        shown_plots=("validation",),
        metadata={
            "coverage_floor": config.min_coverage,
            "coverage_floor_met": floor_met,
            "candidates_skipped": dg.MetadataValue.json(grid.skipped),
        },
    )
    report_selection(context, report, mlflow, storage)
    return selection
