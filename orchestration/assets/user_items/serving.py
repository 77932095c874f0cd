"""user_recommendations: the user-items champion's top-K unseen items for every user it knows,
as a DuckDB table for lookups; its dbt source tests run as the asset's check."""

import time
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from ml.datasets.user_items import read_user_histories
from ml.serving.batch import USER_ITEMS_SCHEMA, lookup_ms, user_items_batches, write_table
from orchestration.assets.champion_tables import champion_bundle, dbt_source_tests
from orchestration.assets.user_items.registry import MODEL_NAME, user_items_registered_model
from orchestration.config import ServingTableConfig
from orchestration.resources import MlflowResource, RunStore
from orchestration.settings import SERVING_DIR, USER_ITEMS_WAREHOUSE_PATH

TABLE = "user_recommendations"


@dg.asset(
    deps=[user_items_registered_model],
    group_name="user_items",
    kinds={"duckdb"},
    description="The user-items champion's top-K items for every user it knows, none of what "
    "the user already has in the published warehouse (every period), in "
    "data/serving/user_recommendations.duckdb, indexed by user_id.",
)
def user_recommendations(
    context: dg.AssetExecutionContext,
    config: ServingTableConfig,
    mlflow: MlflowResource,
    run_store: RunStore,
) -> dg.MaterializeResult:
    into = run_store.run_dir(context.run.run_id) / "user_items_champion"
    bundle, version = champion_bundle(mlflow, MODEL_NAME, into)
    assert bundle.users is not None, "a user-items champion always carries its users"
    users = bundle.users.to_pylist()
    # Fresher than the bundle's own copy: what each user has now is never recommended.
    histories = read_user_histories(Path(USER_ITEMS_WAREHOUSE_PATH), users, bundle.catalogue)
    path = SERVING_DIR / f"{TABLE}.duckdb"
    started = time.perf_counter()
    rows = write_table(
        path,
        TABLE,
        user_items_batches(bundle, histories, config.k, config.batch, context.log.info),
        USER_ITEMS_SCHEMA,
        "user_id",
    )
    seconds = time.perf_counter() - started
    sample = users[:: max(1, len(users) // 200)]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "users": len(users),
            "k": config.k,
            "champion_version": version,
            "build_seconds": seconds,
            "lookup_ms_p50": lookup_ms(path, TABLE, "user_id", sample),
            "path": dg.MetadataValue.path(str(path)),
        }
    )


@dg.asset_check(asset=user_recommendations, blocking=False)
def user_recommendations_dbt_tests(dbt: DbtCliResource) -> dg.AssetCheckResult:
    """The dbt source tests of the table (k rows per user, ranks 1..k, no item the user already
    has, every item in dim_items), run right after it was written."""
    return dbt_source_tests(dbt, "serving_user_items", USER_ITEMS_WAREHOUSE_PATH)
