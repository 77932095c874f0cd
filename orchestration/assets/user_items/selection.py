"""user-items selection on validation (NDCG@10 by default), and the gate: beat popularity."""

from dataclasses import dataclass

import dagster as dg
import pandas as pd

from ml.evaluation.candidates import CandidateResult
from ml.evaluation.ranking import ranked
from ml.evaluation.report import (
    USER_ITEMS_COLUMNS,
    plot_validation_bars,
    table_rows,
)
from ml.evaluation.selection import EvidenceFloor, baseline_gate
from ml.evaluation.user_items import best
from ml.registry import log_to_run
from orchestration.assets.grid import UnitOutcome
from orchestration.assets.registration import logged_metrics
from orchestration.assets.user_items.candidates import (
    EXPERIMENT,
    user_item_candidates,
    user_items_baseline,
)
from orchestration.assets.user_items.dataset import UserItemsDatasetHandle
from orchestration.config import UserItemsSelectionConfig
from orchestration.metadata import for_display, mlflow_plot, rows_table
from orchestration.resources import MlflowResource
from orchestration.settings import WORKER_NAME
from orchestration.storage import RunStorage, run_key


@dataclass
class UserItemsSelection:
    metric: str
    selected: CandidateResult
    baselines: list[CandidateResult]
    rows: list[dict]
    plots: dict[str, str]  # name -> PNG in the run store
    min_validation_users: int  # the gate's floor


@dg.asset(
    ins={
        "candidates": dg.AssetIn(user_item_candidates.key),
        "baseline": dg.AssetIn(user_items_baseline.key),
    },
    group_name="user_items",
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
) -> UserItemsSelection:
    outcomes = [*candidates, *baseline]
    results = [r for o in outcomes for r in o.results]
    skipped = {o.unit: o.skipped for o in outcomes if o.skipped}
    models = [r for r in results if not r.baseline]
    if not models:
        raise dg.Failure(
            "no candidate could fit: "
            + ("; ".join(f"{u}: {why}" for u, why in skipped.items()) or "the grid is empty"),
            allow_retries=False,
        )
    try:
        selected = best(models, config.min_coverage, config.metric)
        floor_met = True
    except ValueError as e:
        context.log.warning(f"{e}: selecting on {config.metric} alone")
        selected, floor_met = best(models, 0.0, config.metric), False
    baselines = [r for r in results if r.baseline]
    rows = table_rows(
        ranked(results, config.metric, "hit_rate_at_10"), 10, selected.name, USER_ITEMS_COLUMNS
    )
    plots = {"validation": run_key(context.run.run_id, "plots", "user_items.png")}
    plot = plot_validation_bars(rows, config.metric, storage.writable(plots["validation"]))
    storage.commit(plots["validation"])
    parent = mlflow.parent_run(EXPERIMENT, context)
    client = mlflow.client()
    client.log_table(parent, data=pd.DataFrame(rows), artifact_file="validation_table.json")
    client.log_artifact(parent, str(plot), artifact_path="plots")
    experiment_id = mlflow.experiment_id(EXPERIMENT)
    log_to_run(
        client,
        parent,
        {
            "source": user_items_dataset.source,
            "sample_percent": user_items_dataset.sample_percent,
            "split_method": user_items_dataset.split_method,
            "selected_candidate": selected.name,
            "selected_family": selected.family,
            "validation_users": user_items_dataset.summary["validation"]["queries"],
        },
        logged_metrics(
            selected.name, {"validation": {r.name: r.metrics for r in [selected, *baselines]}}
        ),
    )
    context.add_output_metadata(
        for_display(
            {
                "selected": selected.name,
                "coverage_floor": config.min_coverage,
                "coverage_floor_met": floor_met,
                f"selected_validation_{config.metric}": selected.metrics[config.metric],
                **{
                    f"{b.family}_baseline_validation_{config.metric}": b.metrics[config.metric]
                    for b in baselines
                },
                "candidates_skipped": dg.MetadataValue.json(skipped),
                "validation": rows_table(rows),
                **mlflow_plot(
                    mlflow, experiment_id, parent, f"plots/{plot.name}", "validation_plot"
                ),
                "mlflow_run": dg.MetadataValue.url(mlflow.run_url(experiment_id, parent)),
                "worker": WORKER_NAME,
            }
        )
    )
    return UserItemsSelection(
        config.metric, selected, baselines, rows, plots, config.min_validation_users
    )


@dg.asset_check(asset=user_items_candidate_metrics, blocking=True)
def user_items_model_beats_popularity(
    user_items_candidate_metrics: UserItemsSelection,
) -> dg.AssetCheckResult:
    """The selected model must beat popularity on the validation metric (NDCG@10), measured on
    at least min_validation_users users; blocking, so a model that does not is never
    registered."""
    selection = user_items_candidate_metrics
    floor = EvidenceFloor(
        selection.min_validation_users,
        "validation users",
        "user_items_candidate_metrics.config.min_validation_users",
    )
    gate = baseline_gate(
        selection.selected, selection.baselines, [selection.metric], floor, ties_pass=False
    )
    return dg.AssetCheckResult(
        passed=gate.passed,
        metadata={"validation_users": int(selection.selected.metrics["queries"])},
        description=gate.description,
    )
