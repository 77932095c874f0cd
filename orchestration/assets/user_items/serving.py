"""user_recommendations: top-K items for every user of the interactions, from the user-items
champion, as a DuckDB table for lookups; its dbt source tests run as the asset's check."""

import dagster as dg
from dagster_dbt import DbtCliResource

from ml.datasets.user_items import read_interacting_users, read_user_histories
from ml.registry import current_champion
from ml.serving.batch import USER_ITEMS_SCHEMA, user_bases, user_items_batches, user_rows
from orchestration.assets.champion_tables import champion_bundle, dbt_source_tests, serving_table
from orchestration.assets.user_items.registry import MODEL_NAME, user_items_registered_model
from orchestration.config import ServingTableConfig
from orchestration.resources import MlflowResource
from orchestration.settings import USER_ITEMS_WAREHOUSE_KEY
from orchestration.storage import RunStorage, run_key

TABLE = "user_recommendations"
BASES = ("user", "history", "popularity")


@dg.asset(
    deps=[user_items_registered_model],
    kinds={"duckdb"},
    description="Top-K items for every user of the interactions, none of what the user already "
    "has: the champion's for the users it knows, else scored from the user's own items, else "
    "the most popular (based_on says which); in serving/user_recommendations.duckdb in the run "
    "store, indexed by user_id.",
)
def user_recommendations(
    context: dg.AssetExecutionContext,
    config: ServingTableConfig,
    mlflow: MlflowResource,
    storage: RunStorage,
) -> dg.MaterializeResult:
    run_id = context.run.run_id
    into = storage.writable(run_key(run_id, "user_items_champion"))
    champion = current_champion(mlflow.client(), MODEL_NAME)
    bundle, built_from = champion_bundle(mlflow, MODEL_NAME, champion, into)
    warehouse = storage.stage(USER_ITEMS_WAREHOUSE_KEY)
    users = read_interacting_users(warehouse)
    # Fresher than the bundle's own copy: what each user has now is never recommended.
    histories = read_user_histories(warehouse, users, bundle.catalogue)
    bases = user_bases(user_rows(bundle, users), histories)
    served = {basis: int((bases == basis).sum()) for basis in BASES}
    context.log.info(
        f"{len(users):,} users: {served['user']:,} known to the model, {served['history']:,} "
        f"scored from their own items, {served['popularity']:,} given the most popular"
    )
    return serving_table(
        storage,
        run_id,
        TABLE,
        user_items_batches(bundle, users, histories, config.k, config.batch, context.log.info),
        USER_ITEMS_SCHEMA,
        "user_id",
        users,
        "users",
        built_from,
        config.k,
        {
            **{f"users_based_on_{basis}": n for basis, n in served.items()},
            **{f"share_based_on_{basis}": n / max(len(users), 1) for basis, n in served.items()},
        },
    )


@dg.asset_check(asset=user_recommendations, blocking=False)
def user_recommendations_dbt_tests(dbt: DbtCliResource, storage: RunStorage) -> dg.AssetCheckResult:
    """The dbt source tests of the table (k rows for every user of stg_interactions, ranks
    1..k, no item the user already has, every item in dim_items), run right after it was
    written."""
    return dbt_source_tests(dbt, storage, "serving_user_items", TABLE, USER_ITEMS_WAREHOUSE_KEY)
