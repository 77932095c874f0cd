"""The MLflow resource (plain mlflow; dagster-mlflow is unmaintained). The run store is in
orchestration/storage.py."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import dagster as dg
from mlflow import MlflowClient

from ml.registry import ensure_experiment
from orchestration.locks import file_lock, named_lock
from orchestration.settings import (
    DATA_DIR,
    LOCK_DATABASE_URL,
    MLFLOW_ARTIFACT_LOCATION,
    MLFLOW_TRACKING_URI,
    MLFLOW_UI_URL,
)

TRAINING_VIEW = "workflowType=machine_learning"


class MlflowResource(dg.ConfigurableResource):
    """The tracking store and registry at ``tracking_uri`` (a sqlite file, or a tracking server);
    new experiments keep artifacts at ``artifact_location`` (None: the server's own, which a
    tracking server proxies to its object store). Creating an experiment or a pipeline's parent
    run is serialised by a lock: a Postgres advisory lock in ``lock_database_url`` when set (the
    cluster: steps on several machines), else a file lock in ``lock_dir``."""

    tracking_uri: str = MLFLOW_TRACKING_URI
    artifact_location: str | None = MLFLOW_ARTIFACT_LOCATION
    ui_url: str = MLFLOW_UI_URL
    lock_database_url: str | None = LOCK_DATABASE_URL
    lock_dir: str = str(DATA_DIR / "locks")

    def sqlite_database(self) -> Path | None:
        """The store's file when it is a local sqlite database."""
        prefix = "sqlite:///"
        return (
            Path(self.tracking_uri.removeprefix(prefix))
            if self.tracking_uri.startswith(prefix)
            else None
        )

    def experiment_id(self, name: str) -> str:
        self.client()  # the store exists before the experiment's lock is taken
        # Parallel steps or runs creating the experiment at once make all but one fail.
        with self.lock(f"mlflow experiment {name}"):
            return ensure_experiment(self.tracking_uri, name, self.artifact_location)

    def lock(self, name: str):
        return named_lock(name, self.lock_database_url, Path(self.lock_dir))

    def experiment_ids(self) -> list[str]:
        """Every experiment's id; none while the sqlite store does not exist (creates none)."""
        database = self.sqlite_database()
        if database is not None and not database.exists():
            return []
        return [e.experiment_id for e in self.client().search_experiments()]

    def client(self) -> MlflowClient:
        """A client; opening a sqlite store creates its tables when they are missing, so that
        is done by one process at a time: two at once (a step and the dead-run sensor, or steps
        of two experiments) break one with "table ... already exists"."""
        database = self.sqlite_database()
        if database is None:
            return MlflowClient(self.tracking_uri)
        # Beside the file: every process that opens it through here takes the same lock.
        with file_lock(database.with_name(f"{database.name}.lock")):
            return MlflowClient(self.tracking_uri)

    # MLflow 3.17's UI picks GenAI or model-training pages from a global toggle (remembered by
    # the browser, GenAI by default), not from the experiment's kind: links name the mode.
    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}?{TRAINING_VIEW}"

    def experiment_url(self, experiment_id: str) -> str:
        return f"{self.ui_url}/#/experiments/{experiment_id}?{TRAINING_VIEW}"

    def artifact_url(self, experiment_id: str, run_id: str, path: str) -> str:
        """The run's artifact view with ``path`` open."""
        return (
            f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}/artifacts/{path}"
            f"?{TRAINING_VIEW}"
        )

    def artifact_file_url(self, run_id: str, path: str) -> str:
        """The artifact's bytes as the MLflow UI serves them (an image can be embedded)."""
        query = urllib.parse.urlencode({"path": path, "run_uuid": run_id})
        return f"{self.ui_url}/get-artifact?{query}"

    def model_version_url(self, name: str, version: str) -> str:
        return f"{self.ui_url}/#/models/{urllib.parse.quote(name)}/versions/{version}"

    def parent_run(
        self, experiment: str, context: dg.OpExecutionContext | dg.AssetExecutionContext
    ) -> str:
        """The one MLflow run of this Dagster run (named after it, tagged with its id), created
        by the first step that needs it; parallel steps, here or on other machines, take a lock
        around the lookup."""
        experiment_id = self.experiment_id(experiment)
        dagster_run = context.run.run_id
        with self.lock(f"mlflow parent run {dagster_run}"):
            found = self.client().search_runs(
                [experiment_id],
                f"tags.dagster_run_id = '{dagster_run}' and tags.kind = 'pipeline'",
                max_results=1,
            )
            if found:
                return found[0].info.run_id
            run = self.client().create_run(
                experiment_id,
                run_name=f"{context.job_name} {dagster_run[:8]}",
                tags={
                    "dagster_run_id": dagster_run,
                    "dagster_job": context.job_name,
                    "kind": "pipeline",
                    "mlflow.note.content": (
                        f"Dagster run {dagster_run} ({context.job_name}): every candidate is a "
                        "nested run; the selected model's run holds the registered version."
                    ),
                },
            )
            return run.info.run_id
