"""The one Dagster code location (workspace.yaml points here)."""

import dagster as dg

from orchestration.assets.next_track.definitions import next_track_definitions
from orchestration.assets.user_items.definitions import user_items_definitions
from orchestration.console import console_logger, keep_integration_notes_at_debug, progress_console
from orchestration.io_manager import RunStoreIOManager
from orchestration.project import DbtCli, dbt_project
from orchestration.resources import MlflowResource
from orchestration.run_health import dead_run_sensor
from orchestration.settings import (
    DBT_EXECUTABLE,
    MAX_PARALLEL_STEPS,
    PROFILE,
    STEP_PRELOAD_MODULES,
)
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
            "start_method": {"forkserver": {"preload_modules": STEP_PRELOAD_MODULES}},
        }
    )


# Every hand-over goes through the run store: the data folder, or the cluster's bucket.
storage = RunStorage()

keep_integration_notes_at_debug()


defs = dg.Definitions.merge(
    next_track_definitions(),
    user_items_definitions(),
    dg.Definitions(
        sensors=[dead_run_sensor],
        # Dagster's console (pool waits shown) for UI runs; the compact one for `make run`.
        loggers={"console": console_logger, "progress_console": progress_console},
        resources={
            "dbt": DbtCli(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
            "mlflow": MlflowResource(),
            "storage": storage,
            "io_manager": RunStoreIOManager(storage=storage),
        },
        executor=executor(),
    ),
)
