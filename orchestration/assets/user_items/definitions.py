"""The user-items use case's definitions: its assets and checks, built into a group, a job and a
schedule by the factory."""

import dagster as dg

from orchestration.assets.dbt import user_items_dbt_models
from orchestration.assets.user_items.candidates import (
    user_items_baseline_candidates,
    user_items_candidates,
)
from orchestration.assets.user_items.dataset import user_items_dataset
from orchestration.assets.user_items.ingest import raw_interactions
from orchestration.assets.user_items.registry import (
    USER_ITEMS,
    user_items_registered_model,
    user_items_selected_model,
)
from orchestration.assets.user_items.selection import user_items_candidate_metrics
from orchestration.assets.user_items.serving import (
    user_recommendations,
    user_recommendations_dbt_tests,
)
from orchestration.factory import use_case_definitions


def user_items_definitions() -> dg.Definitions:
    return use_case_definitions(
        USER_ITEMS,
        assets=[
            raw_interactions,
            user_items_dbt_models,
            user_items_dataset,
            user_items_candidates,
            user_items_baseline_candidates,
            user_items_candidate_metrics,
            user_items_selected_model,
            user_items_registered_model,
            user_recommendations,
        ],
        asset_checks=[user_recommendations_dbt_tests],
    )
