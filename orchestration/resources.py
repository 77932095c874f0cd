"""Resources: the per-run file store and MLflow (plain mlflow; dagster-mlflow is unmaintained)."""

from __future__ import annotations

import fcntl
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import mlflow
from mlflow import MlflowClient

from ml.registry import ensure_experiment
from orchestration.settings import (
    KEEP_RUNS,
    MIN_FREE_MB,
    MLFLOW_ARTIFACT_LOCATION,
    MLFLOW_TRACKING_URI,
    MLFLOW_UI_URL,
    RUNS_DIR,
)


class RunStore(dg.ConfigurableResource):
    """One folder per Dagster run for everything it writes (raw file, warehouse build, dataset,
    candidate models, bundle), so a failed or concurrent run never overwrites another's files.
    Folders of old runs are pruned, keeping the newest ``keep_runs`` and any still in use.
    A step asking for its folder fails, naming it, when the data folder's file system has less
    than ``min_free_mb`` free, before it writes anything."""

    base_dir: str = str(RUNS_DIR)
    keep_runs: int = KEEP_RUNS
    min_free_mb: int = MIN_FREE_MB

    def run_dir(self, run_id: str) -> Path:
        folder = Path(self.base_dir) / run_id
        folder.mkdir(parents=True, exist_ok=True)
        free_mb = shutil.disk_usage(folder).free // 2**20
        if free_mb < self.min_free_mb:
            raise dg.Failure(
                description=f"{folder}: only {free_mb:,} MB free there, below the "
                f"{self.min_free_mb:,} MB a step needs to start (NEXT_TRACK_MIN_FREE_MB), so "
                "the step stopped before writing anything; free space there (or point "
                "NEXT_TRACK_DATA_DIR elsewhere) and run again.",
                allow_retries=False,
            )
        return folder

    def existing(self, run_id: str, *parts: str) -> Path | None:
        path = Path(self.base_dir, run_id, *parts)
        return path if path.exists() else None

    def prune(self, protect: set[str]) -> list[str]:
        """Remove the oldest run folders beyond ``keep_runs``; never one in ``protect``."""
        base = Path(self.base_dir)
        if not base.is_dir():
            return []
        folders = sorted((p for p in base.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        removed = []
        for folder in folders[: max(0, len(folders) - self.keep_runs)]:
            if folder.name not in protect:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
        return removed


TRAINING_VIEW = "workflowType=machine_learning"


class MlflowResource(dg.ConfigurableResource):
    tracking_uri: str = MLFLOW_TRACKING_URI
    artifact_location: str = MLFLOW_ARTIFACT_LOCATION
    ui_url: str = MLFLOW_UI_URL

    def sqlite_database(self) -> Path | None:
        """The store's file when it is a local sqlite database."""
        prefix = "sqlite:///"
        return (
            Path(self.tracking_uri.removeprefix(prefix))
            if self.tracking_uri.startswith(prefix)
            else None
        )

    def experiment_id(self, name: str) -> str:
        mlflow.set_tracking_uri(self.tracking_uri)
        database = self.sqlite_database()
        if database is None:
            return ensure_experiment(self.tracking_uri, name, self.artifact_location)
        database.parent.mkdir(parents=True, exist_ok=True)
        # Parallel steps or runs creating the database (or the experiment) at once make all but
        # one fail ("table ... already exists"): one process at a time.
        with file_lock(database.with_name(f".{database.name}.lock")):
            return ensure_experiment(self.tracking_uri, name, self.artifact_location)

    def experiment_ids(self) -> list[str]:
        """Every experiment's id; none while the sqlite store does not exist (creates none)."""
        database = self.sqlite_database()
        if database is not None and not database.exists():
            return []
        return [e.experiment_id for e in self.client().search_experiments()]

    def client(self) -> MlflowClient:
        return MlflowClient(self.tracking_uri)

    # MLflow 3.17's UI picks GenAI or model-training pages from a global toggle (remembered by
    # the browser, GenAI by default), not from the experiment's kind: links name the mode.
    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}?{TRAINING_VIEW}"

    def experiment_url(self, experiment_id: str) -> str:
        return f"{self.ui_url}/#/experiments/{experiment_id}?{TRAINING_VIEW}"

    def parent_run(
        self, experiment: str, context: dg.OpExecutionContext | dg.AssetExecutionContext
    ) -> str:
        """The one MLflow run of this Dagster run (named after it, tagged with its id), created
        by the first step that needs it; parallel steps take a file lock around the lookup."""
        experiment_id = self.experiment_id(experiment)
        dagster_run = context.run.run_id
        lock = Path(RUNS_DIR) / dagster_run / ".mlflow-parent.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(lock):
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


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (released when the holder dies, even by kill -9)."""
    with path.open("w") as handle:
        deadline = time.monotonic() + 60
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
