"""The one Dagster code location (workspace.yaml points here)."""

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.assets.dbt import next_track_dbt_models, user_items_dbt_models
from orchestration.assets.next_track.candidates import (
    neighbourhood_candidates,
    next_track_baseline_candidates,
    rung_references,
    sequential_rules_candidates,
    slist_candidates,
    track_embeddings,
)
from orchestration.assets.next_track.dataset import next_track_dataset
from orchestration.assets.next_track.ingest import raw_playlist_events
from orchestration.assets.next_track.registry import NEXT_TRACK, next_track_registered_model
from orchestration.assets.next_track.selection import (
    next_track_candidate_metrics,
    next_track_selected_model,
)
from orchestration.assets.next_track.serving import (
    track_recommendations,
    track_recommendations_dbt_tests,
)
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
from orchestration.assets.user_items.selection import (
    user_items_candidate_metrics,
    user_items_model_beats_popularity,
)
from orchestration.assets.user_items.serving import (
    user_recommendations,
    user_recommendations_dbt_tests,
)
from orchestration.checks import (
    registered_model_is_fresh,
    selected_model_beats_baselines,
    validation_labels_known,
)
from orchestration.console import console_logger, keep_integration_notes_at_debug, progress_console
from orchestration.factory import use_case_definitions
from orchestration.io_manager import RunStoreIOManager
from orchestration.project import dbt_project
from orchestration.resources import MlflowResource
from orchestration.run_health import dead_run_sensor
from orchestration.sensors import inbox_sensor
from orchestration.settings import DBT_EXECUTABLE, MAX_PARALLEL_STEPS, PROFILE
from orchestration.storage import RunStorage


def executor() -> dg.ExecutorDefinition:
    """Grid units are separate steps. Embedded: NEXT_TRACK_MAX_PARALLEL_STEPS step processes at
    once (2 = this machine's cores), forked from a forkserver that imported the definitions once
    per run (spawned afresh, each step re-imported dagster, dagster-dbt and MLflow). Cluster:
    every step is a Celery task on whichever worker takes it (orchestration/cluster)."""
    if PROFILE == "cluster":
        from orchestration.cluster.celery_app import cluster_executor

        return cluster_executor
    return dg.multiprocess_executor.configured(
        {
            "max_concurrent": MAX_PARALLEL_STEPS,
            "start_method": {"forkserver": {"preload_modules": [__name__]}},
        }
    )


# Every hand-over goes through the run store: the data folder, or the cluster's bucket.
storage = RunStorage()

keep_integration_notes_at_debug()
next_track = use_case_definitions(
    NEXT_TRACK,
    assets=[
        raw_playlist_events,
        next_track_dbt_models,
        next_track_dataset,
        rung_references,
        track_embeddings,
        sequential_rules_candidates,
        neighbourhood_candidates,
        slist_candidates,
        next_track_baseline_candidates,
        next_track_candidate_metrics,
        next_track_selected_model,
        next_track_registered_model,
        track_recommendations,
    ],
    asset_checks=[
        validation_labels_known,
        selected_model_beats_baselines,
        registered_model_is_fresh,
        track_recommendations_dbt_tests,
    ],
    sensors=[inbox_sensor],
)
user_items = use_case_definitions(
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
    asset_checks=[user_items_model_beats_popularity, user_recommendations_dbt_tests],
)
defs = dg.Definitions.merge(
    next_track,
    user_items,
    dg.Definitions(
        sensors=[dead_run_sensor],
        # Dagster's console (pool waits shown) for UI runs; the compact one for `make run`.
        loggers={"console": console_logger, "progress_console": progress_console},
        resources={
            "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
            "mlflow": MlflowResource(),
            "storage": storage,
            "io_manager": RunStoreIOManager(storage=storage),
        },
        executor=executor(),
    ),
)
