"""user_items_dataset: the interaction split encoded once per run into the two folds every
candidate reads (validation: train -> validation labels; test: train + validation -> test)."""

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from ml.datasets.checks import user_items_fingerprint, user_items_problem
from ml.datasets.user_items import UserItemsFold, read_user_items_data
from ml.warehouse import read_table_rows
from orchestration.assets.dbt import user_items_dbt_models, warehouse_for_run
from orchestration.settings import USER_ITEMS_WAREHOUSE_KEY
from orchestration.steps import DatasetStep, run_lineage
from orchestration.storage import RunStorage

INTERACTION_SPLITS = get_asset_key_for_model([user_items_dbt_models], "interaction_splits")
DIM_ITEMS = get_asset_key_for_model([user_items_dbt_models], "dim_items")
RAW_INTERACTIONS = dg.AssetKey("raw_interactions")


@dataclass
class UserItemsDatasetHandle:
    key: str  # the folder in the run store that holds the folds: validation/ and test/
    fingerprint: str
    source: str  # the data lineage
    warehouse_key: str
    sample_percent: float  # the dbt vars that build was made with
    split_method: str
    summary: dict

    def fold(self, storage: RunStorage, name: str) -> UserItemsFold:
        return UserItemsFold.load(storage.stage(f"{self.key}/{name}"))

    @property
    def grid_train_rows(self) -> int:
        """The train rows a grid unit fits on: the validation fold's."""
        return self.summary["validation"]["train_rows"]


@dg.asset(
    deps=[INTERACTION_SPLITS, DIM_ITEMS],
    kinds={"numpy", "parquet"},
    description="interaction_splits and dim_items encoded into two folds in the run's folder: "
    "validation (train period -> validation labels) to choose, test (train + validation -> test "
    "labels) to refit the chosen model and score it once.",
)
def user_items_dataset(
    context: dg.AssetExecutionContext, storage: RunStorage
) -> UserItemsDatasetHandle:
    run_id = context.run.run_id
    step = DatasetStep(
        storage, run_id, warehouse_for_run(storage, run_id, USER_ITEMS_WAREHOUSE_KEY)
    )
    stats = _split_stats(context, step.warehouse)
    data = read_user_items_data(step.warehouse)
    folds = {fold.name: fold for fold in (data.validation, data.test)}
    key = step.save("user_items_dataset", folds, user_items_problem(data))
    fingerprint = user_items_fingerprint(data)
    _, source = run_lineage(context, RAW_INTERACTIONS)
    summary = {"validation": data.validation.summary(), "test": data.test.summary()}
    context.add_output_metadata(
        step.metadata(
            key,
            {
                "split_method": stats["split_method"],
                "split_reason": stats["split_reason"],
                "users": summary["test"]["users"],
                "items": summary["test"]["items"],
                "validation_queries": summary["validation"]["queries"],
                "test_queries": summary["test"]["queries"],
                "seconds": step.seconds(),
                "fingerprint": fingerprint,
            },
        )
    )
    return UserItemsDatasetHandle(
        key=key,
        fingerprint=fingerprint,
        source=source,
        warehouse_key=step.warehouse_key,
        sample_percent=stats["sample_percent"],
        split_method=stats["split_method"],
        summary=summary,
    )


def _split_stats(context: dg.AssetExecutionContext, warehouse: Path) -> dict:
    """The split dbt made (interaction_stats), logged."""
    stats = read_table_rows(warehouse, "interaction_stats")[0]
    context.log.info(
        f"split {stats['split_method']} ({stats['split_reason']}): validation users "
        f"{stats['validation_users']:,}, test users {stats['test_users']:,}"
    )
    return stats
