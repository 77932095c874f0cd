"""MLflow as a small Dagster resource around plain mlflow (dagster-mlflow is unmaintained)."""

from pathlib import Path

import dagster as dg
from mlflow import MlflowClient

from ml.registry import ensure_experiment
from orchestration.settings import (
    MLFLOW_ARTIFACT_LOCATION,
    MLFLOW_DIR,
    MLFLOW_TRACKING_URI,
    MLFLOW_UI_URL,
)


class MlflowResource(dg.ConfigurableResource):
    tracking_uri: str = MLFLOW_TRACKING_URI
    artifact_location: str = MLFLOW_ARTIFACT_LOCATION
    experiment_name: str = "next-track"
    ui_url: str = MLFLOW_UI_URL

    def experiment_id(self) -> str:
        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True
            )
        MLFLOW_DIR.mkdir(parents=True, exist_ok=True)
        return ensure_experiment(self.tracking_uri, self.experiment_name, self.artifact_location)

    def client(self) -> MlflowClient:
        return MlflowClient(self.tracking_uri)

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}"
