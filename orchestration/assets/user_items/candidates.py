"""user-items candidates: each grid unit fits one family on the validation fold (early stopping
on validation NDCG@10 for the two-tower, its per-epoch metrics logged to MLflow) and scores every
ranking variant (see orchestration/assets/grid.py for the steps)."""

import dagster as dg

from ml.evaluation.candidates import CandidateSpec, run_unit
from ml.evaluation.report import USER_ITEMS_COLUMNS, table_rows
from ml.evaluation.user_items import unit_data
from ml.recommenders.base import CannotFit
from orchestration.assets.grid import UnitOutcome, candidate_grid
from orchestration.assets.units import epoch_run, log_unit_runs, unit_metadata
from orchestration.assets.user_items.dataset import UserItemsDatasetHandle, user_items_dataset
from orchestration.config import USER_ITEMS_GRID
from orchestration.resources import MlflowResource
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
    prefix = run_key(context.run.run_id, "user_items_candidates")
    try:
        with epoch_run(context, mlflow, EXPERIMENT, spec, dataset.fingerprint) as on_epoch:
            results = run_unit(spec, unit_data(fold, on_epoch), storage, prefix, context.log.info)
    except CannotFit as e:
        context.log.warning(f"skipped {spec.unit_name}: {e}")
        return UnitOutcome(spec.unit_name, spec.family, skipped=str(e))
    log_unit_runs(context, mlflow, EXPERIMENT, spec, results, dataset.fingerprint, fold.n_items)
    rows = table_rows(results, 10, None, USER_ITEMS_COLUMNS)
    context.add_output_metadata(unit_metadata(results, rows, "ndcg_at_10", {}))
    return UnitOutcome(spec.unit_name, spec.family, results)


user_items_candidates = candidate_grid(
    name="user_items_candidates",
    default=USER_ITEMS_GRID,
    description="Two-tower (PyTorch), EASE and item-kNN over the user's history, each fitted on "
    "the train period and scored on validation (NDCG, hit rate, recall, coverage at 10).",
    dataset=user_items_dataset,
    handle_type=UserItemsDatasetHandle,
    fit_unit=fit_user_items_unit,
    k=10,
)


@dg.asset(
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
