"""user-items candidates: each grid unit fits one family on the validation fold (early stopping
on validation NDCG@10 for the two-tower, its per-epoch metrics logged to MLflow) and scores every
ranking variant (see orchestration/assets/grid.py for the steps)."""

import dagster as dg
from pydantic import TypeAdapter

from ml.evaluation.candidates import CandidateResult, CandidateSpec
from ml.evaluation.report import USER_ITEMS_COLUMNS, table_rows
from ml.evaluation.user_items import run_on_fold
from ml.recommenders.base import CannotFit
from ml.registry import log_child_run
from orchestration.assets.grid import UnitOutcome, candidate_grid
from orchestration.assets.user_items.dataset import UserItemsDatasetHandle, user_items_dataset
from orchestration.config import USER_ITEMS_GRID
from orchestration.metadata import for_display, rows_table
from orchestration.resources import MlflowResource
from orchestration.settings import WORKER_NAME
from orchestration.storage import RunStorage, run_key

EXPERIMENT = "user-items"
BASELINE = CandidateSpec("popularity", baseline=True)


def fit_user_items_unit(
    context: dg.OpExecutionContext,
    spec: CandidateSpec,
    dataset: UserItemsDatasetHandle,
    storage: RunStorage,
    mlflow: MlflowResource,
) -> UnitOutcome:
    fold = dataset.fold(storage, "validation")
    parent = mlflow.parent_run(EXPERIMENT, context)
    experiment_id = mlflow.experiment_id(EXPERIMENT)
    client = mlflow.client()
    tags = {
        "mlflow.parentRunId": parent,
        "kind": "training",
        "family": spec.family,
        "unit": spec.unit_name,
        "dagster_run_id": context.run.run_id,
        "data_fingerprint": dataset.fingerprint,
        "worker": WORKER_NAME,
    }
    training_run = client.create_run(
        experiment_id, run_name=f"{spec.unit_name} (training)", tags=tags
    )

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            client.log_metric(training_run.info.run_id, f"validation_{key}", value, step=epoch)

    try:
        model, fold_results = run_on_fold(
            spec.family, spec.params, fold, context.log.info, on_epoch, variants=spec.variants
        )
    except CannotFit as e:
        client.set_terminated(training_run.info.run_id, status="FAILED")
        context.log.warning(f"skipped {spec.unit_name}: {e}")
        return UnitOutcome(spec.unit_name, spec.family, skipped=str(e))
    client.set_terminated(training_run.info.run_id)
    model_key = run_key(context.run.run_id, "user_items_candidates", spec.unit_name)
    model.save(storage.writable(model_key))
    storage.commit(model_key)
    results = []
    for variant, fold_result in zip(spec.variants, fold_results, strict=True):
        result = CandidateResult(
            name=fold_result.name,
            family=spec.family,
            unit=spec.unit_name,
            params=fold_result.params,  # what a refit uses (a two-tower's kept epochs)
            variant=dict(variant),
            model_key=model_key,
            metrics=fold_result.metrics,
            fit_seconds=fold_result.fit_seconds,
            eval_seconds=0.0,
            baseline=spec.baseline,
            facts=fold_result.facts,
        )
        child_tags = {k: v for k, v in tags.items() if k != "mlflow.parentRunId"}
        log_child_run(
            client,
            experiment_id,
            parent,
            result.name,
            {"family": result.family, **TypeAdapter(dict).dump_python(result.params)},
            {
                **{f"validation_{k}": v for k, v in result.metrics.items()},
                "fit_seconds": result.fit_seconds,
                "catalogue_size": float(fold.n_items),
                **result.facts,
            },
            {**child_tags, "kind": "baseline" if spec.baseline else "candidate"},
        )
        results.append(result)
    rows = table_rows(results, 10, None, USER_ITEMS_COLUMNS)
    context.add_output_metadata(
        for_display(
            {
                "candidates": len(results),
                "fit_seconds": results[0].fit_seconds,
                "best_validation_ndcg_at_10": max(r.metrics["ndcg_at_10"] for r in results),
                "validation": rows_table(rows),
                "worker": WORKER_NAME,
            }
        )
    )
    return UnitOutcome(spec.unit_name, spec.family, results)


user_items_candidates = candidate_grid(
    name="user_items_candidates",
    default=USER_ITEMS_GRID,
    description="Two-tower (PyTorch), EASE and item-kNN over the user's history, each fitted on "
    "the train period and scored on validation (NDCG, hit rate, recall, coverage at 10).",
    group="user_items",
    dataset=user_items_dataset,
    handle_type=UserItemsDatasetHandle,
    fit_unit=fit_user_items_unit,
    k=10,
)


@dg.asset(
    group_name="user_items",
    description="The bar for user-items: most popular items of the train period, on the same "
    "validation users.",
)
def user_items_baseline_candidates(
    context: dg.AssetExecutionContext,
    user_items_dataset: UserItemsDatasetHandle,
    storage: RunStorage,
    mlflow: MlflowResource,
) -> list[UnitOutcome]:
    return [fit_user_items_unit(context, BASELINE, user_items_dataset, storage, mlflow)]
