"""user_items_dataset: the interaction split encoded once per run into the two folds every
candidate reads (validation: train -> validation labels; test: train + validation -> test)."""

import hashlib
import time
from dataclasses import dataclass

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from ml.datasets.user_items import UserItemsFold, read_user_items_data
from ml.warehouse import read_table_rows
from orchestration.assets.dbt import user_items_dbt_models, warehouse_for_run
from orchestration.lineage import latest_metadata, materialized_in_run
from orchestration.metadata import for_display
from orchestration.settings import USER_ITEMS_WAREHOUSE_KEY, WORKER_NAME
from orchestration.storage import RunStorage, run_key

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


@dg.asset(
    deps=[INTERACTION_SPLITS, DIM_ITEMS],
    group_name="user_items",
    kinds={"numpy", "parquet"},
    description="interaction_splits and dim_items encoded into two folds in the run's folder: "
    "validation (train period -> validation labels) to choose, test (train + validation -> test "
    "labels) to refit the chosen model and score it once.",
)
def user_items_dataset(
    context: dg.AssetExecutionContext, storage: RunStorage
) -> UserItemsDatasetHandle:
    run_id = context.run.run_id
    warehouse_key = warehouse_for_run(storage, run_id, USER_ITEMS_WAREHOUSE_KEY)
    started = time.perf_counter()
    warehouse = storage.stage(warehouse_key)
    stats = read_table_rows(warehouse, "interaction_stats")[0]
    context.log.info(
        f"split {stats['split_method']} ({stats['split_reason']}): validation users "
        f"{stats['validation_users']:,}, test users {stats['test_users']:,}"
    )
    data = read_user_items_data(warehouse)
    for fold in (data.validation, data.test):
        if len(fold.train) == 0 or fold.evaluation is None or len(fold.evaluation) == 0:
            raise dg.Failure(
                f"the {fold.name} fold has no train rows or no users to evaluate: "
                "bring more interactions or loosen min_user_interactions",
                allow_retries=False,
            )
    key = run_key(run_id, "user_items_dataset")
    for fold in (data.validation, data.test):
        fold.save(storage.writable(f"{key}/{fold.name}"))
        storage.commit(f"{key}/{fold.name}")
    fingerprint = hashlib.sha256(
        f"{data.validation.fingerprint}/{data.test.fingerprint}".encode()
    ).hexdigest()[:16]
    ingested = materialized_in_run(context.instance, RAW_INTERACTIONS, run_id)
    source = ingested.get("lineage") or latest_metadata(
        context.instance, RAW_INTERACTIONS, "lineage"
    )
    summary = {"validation": data.validation.summary(), "test": data.test.summary()}
    context.add_output_metadata(
        for_display(
            {
                "split_method": stats["split_method"],
                "split_reason": stats["split_reason"],
                "users": summary["test"]["users"],
                "items": summary["test"]["items"],
                "validation_queries": summary["validation"]["queries"],
                "test_queries": summary["test"]["queries"],
                "seconds": time.perf_counter() - started,
                "fingerprint": fingerprint,
                "warehouse": storage.location(warehouse_key),
                "dataset": storage.location(key),
                "worker": WORKER_NAME,
            }
        )
    )
    return UserItemsDatasetHandle(
        key,
        fingerprint,
        source or "unknown",
        warehouse_key,
        stats["sample_percent"],
        stats["split_method"],
        summary,
    )
