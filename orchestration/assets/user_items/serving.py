"""user_recommendations: the user-items champion's top-K unseen items for every user it knows,
as a DuckDB table for lookups; its dbt source tests run as the asset's check."""

import dagster as dg
from dagster_dbt import DbtCliResource

from ml.datasets.user_items import read_user_histories
from ml.serving.batch import USER_ITEMS_SCHEMA, user_items_batches
from orchestration.assets.champion_tables import champion_bundle, dbt_source_tests, serving_table
from orchestration.assets.user_items.registry import MODEL_NAME, user_items_registered_model
from orchestration.config import ServingTableConfig
from orchestration.resources import MlflowResource
from orchestration.settings import USER_ITEMS_WAREHOUSE_KEY
from orchestration.storage import RunStorage, run_key

TABLE = "user_recommendations"


@dg.asset(
    deps=[user_items_registered_model],
    group_name="user_items",
    kinds={"duckdb"},
    description="The user-items champion's top-K items for every user it knows, none of what "
    "the user already has in the published warehouse (every period), in "
    "serving/user_recommendations.duckdb in the run store, indexed by user_id.",
)
def user_recommendations(
    context: dg.AssetExecutionContext,
    config: ServingTableConfig,
    mlflow: MlflowResource,
    storage: RunStorage,
) -> dg.MaterializeResult:
    run_id = context.run.run_id
    into = storage.writable(run_key(run_id, "user_items_champion"))
    bundle, version = champion_bundle(mlflow, MODEL_NAME, into)
    assert bundle.users is not None, "a user-items champion always carries its users"
    users = bundle.users.to_pylist()
    # Fresher than the bundle's own copy: what each user has now is never recommended.
    warehouse = storage.stage(USER_ITEMS_WAREHOUSE_KEY)
    histories = read_user_histories(warehouse, users, bundle.catalogue)
    return serving_table(
        storage,
        run_id,
        TABLE,
        user_items_batches(bundle, histories, config.k, config.batch, context.log.info),
        USER_ITEMS_SCHEMA,
        "user_id",
        users,
        "users",
        version,
        config.k,
    )


@dg.asset_check(asset=user_recommendations, blocking=False)
def user_recommendations_dbt_tests(dbt: DbtCliResource, storage: RunStorage) -> dg.AssetCheckResult:
    """The dbt source tests of the table (k rows per user, ranks 1..k, no item the user already
    has, every item in dim_items), run right after it was written."""
    return dbt_source_tests(dbt, storage, "serving_user_items", TABLE, USER_ITEMS_WAREHOUSE_KEY)
