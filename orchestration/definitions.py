"""The one Dagster code location (workspace.yaml points here)."""

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.assets.dbt import dbt_models
from orchestration.assets.ingest import raw_playlist_events
from orchestration.assets.model import registered_model, selected_model
from orchestration.assets.training import candidate_metrics, track_embeddings
from orchestration.checks import (
    registered_model_is_fresh,
    selected_model_beats_popularity,
    validation_vocabulary_coverage,
)
from orchestration.jobs import full_pipeline_job
from orchestration.project import dbt_project
from orchestration.resources import MlflowResource
from orchestration.schedules import weekly_retrain_schedule
from orchestration.sensors import inbox_sensor

defs = dg.Definitions(
    assets=[
        raw_playlist_events,
        dbt_models,
        track_embeddings,
        candidate_metrics,
        selected_model,
        registered_model,
    ],
    asset_checks=[
        validation_vocabulary_coverage,
        selected_model_beats_popularity,
        registered_model_is_fresh,
    ],
    jobs=[full_pipeline_job],
    schedules=[weekly_retrain_schedule],
    sensors=[inbox_sensor],
    resources={"dbt": DbtCliResource(project_dir=dbt_project), "mlflow": MlflowResource()},
    # Steps form a chain, so a process per step would buy nothing but ~3.5 s of re-import each;
    # parallel work (the hyperparameter grid) runs in worker processes inside its own step.
    executor=dg.in_process_executor,
)
