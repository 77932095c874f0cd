"""The one Dagster code location (workspace.yaml points here)."""

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.assets.dbt import dbt_models
from orchestration.assets.ingest import raw_playlist_events
from orchestration.assets.training import (
    candidate_metrics,
    registered_model,
    selected_model,
    selected_model_beats_popularity,
    track_embeddings,
)
from orchestration.jobs import full_pipeline_job
from orchestration.project import dbt_project
from orchestration.resources import MlflowResource

defs = dg.Definitions(
    assets=[
        raw_playlist_events,
        dbt_models,
        track_embeddings,
        candidate_metrics,
        selected_model,
        registered_model,
    ],
    asset_checks=[selected_model_beats_popularity],
    jobs=[full_pipeline_job],
    resources={"dbt": DbtCliResource(project_dir=dbt_project), "mlflow": MlflowResource()},
    # Steps form a chain, so a process per step would buy nothing but ~3.5 s of re-import each;
    # parallel work (the hyperparameter grid) runs in worker processes inside its own step.
    executor=dg.in_process_executor,
)
