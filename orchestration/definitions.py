"""The one Dagster code location (workspace.yaml points here)."""

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.assets.dbt import dbt_models
from orchestration.assets.ingest import raw_playlist_events
from orchestration.jobs import full_pipeline_job
from orchestration.project import dbt_project

defs = dg.Definitions(
    assets=[raw_playlist_events, dbt_models],
    jobs=[full_pipeline_job],
    resources={"dbt": DbtCliResource(project_dir=dbt_project)},
    # Steps form a chain, so a process per step would buy nothing but ~3.5 s of re-import each;
    # parallel work (the hyperparameter grid) runs in worker processes inside its own step.
    executor=dg.in_process_executor,
)
