"""MLflow tracking and registry, with plain mlflow calls.

Backend: a database (sqlite), never the file store, with an explicit artifact location; one
experiment; aliases (champion, challenger), not stages.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from ml.metrics import hits_at, label_ranks

MODEL_NAME = "next-track"
CHAMPION, CHALLENGER = "champion", "challenger"
PROMOTION_METRIC = "test_hit_rate_at_100"
PYFUNC_FILE = Path(__file__).with_name("pyfunc_model.py")
ML_PACKAGE = Path(__file__).parent
# Inference needs these and not gensim (vectors ship as numpy); inference from imports misses
# some, so they are explicit.
PIP_REQUIREMENTS = [
    f"mlflow=={mlflow.__version__}",
    "numpy",
    "pandas",
    "pyarrow",
]


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str) -> str:
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(name, artifact_location=artifact_location)
    return experiment.experiment_id


@contextmanager
def logged_run(
    experiment_id: str, run_name: str, params: dict, metrics: dict[str, float], tags: dict
) -> Iterator[mlflow.ActiveRun]:
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        yield run


def log_run(
    experiment_id: str, run_name: str, params: dict, metrics: dict[str, float], tags: dict
) -> str:
    with logged_run(experiment_id, run_name, params, metrics, tags) as run:
        return run.info.run_id


def signature_and_example(example_output: pd.DataFrame, example_tracks: list[str]):
    example_input = pd.DataFrame({"tracks": [example_tracks]})
    return infer_signature(example_input, example_output, params={"k": 10}), example_input


def log_and_register(
    experiment_id: str,
    bundle_dir: Path,
    params: dict,
    metrics: dict[str, float],
    tags: dict[str, str],
    example_tracks: list[str],
    example_output: pd.DataFrame,
) -> tuple[str, str]:
    """Log the pyfunc from code with its bundle, register it; returns (run_id, version)."""
    signature, example_input = signature_and_example(example_output, example_tracks)
    with logged_run(experiment_id, "selected", params, metrics, tags) as run:
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_FILE),
            artifacts={"bundle": str(bundle_dir)},
            code_paths=[str(ML_PACKAGE)],
            pip_requirements=PIP_REQUIREMENTS,
            signature=signature,
            input_example=example_input,
            registered_model_name=MODEL_NAME,
        )
    return run.info.run_id, str(info.registered_model_version)


def current_champion(client: MlflowClient) -> str | None:
    try:
        return client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version
    except MlflowException:
        return None


def pyfunc_hit_rate(model, queries: list[list[str]], labels: list[str], k: int) -> float:
    """Hit rate@k of a loaded next-track pyfunc on queries with known next tracks."""
    output = model.predict(pd.DataFrame({"tracks": queries}), params={"k": k})
    by_row = output.sort_values(["row", "rank"]).groupby("row")["track_key"].apply(list)
    recommendations = [by_row.get(row, []) for row in range(len(queries))]
    return float(hits_at(label_ranks(recommendations, labels), k).mean())


def promote(client: MlflowClient, version: str, score: float, champion_score: float | None) -> str:
    """champion if there is none or ``score`` beats it on the same split; else challenger."""
    alias = CHAMPION if champion_score is None or score > champion_score else CHALLENGER
    client.set_registered_model_alias(MODEL_NAME, alias, version)
    client.set_model_version_tag(MODEL_NAME, version, PROMOTION_METRIC, f"{score:.6f}")
    return alias
