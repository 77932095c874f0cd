"""What both registration assets (next-track, user-items) do around their own model: end the
MLflow runs dead Dagster runs left open, and once the version is described, set its alias, close
the pipeline's MLflow run, prune old run folders and report."""

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from mlflow import MlflowClient
from mlflow.entities import RunStatus
from mlflow.entities.model_registry import ModelVersion

from ml.registry import Promotion, end_orphaned_runs, set_alias
from orchestration.resources import MlflowResource, RunStore
from orchestration.run_health import run_is_live, runs_in_progress


@dataclass
class RegisteredModel:
    name: str
    version: str
    alias: str
    reason: str
    mlflow_run_id: str
    model_uri: str


def end_orphans(context: dg.AssetExecutionContext, client: MlflowClient, experiment_id: str):
    ended = end_orphaned_runs(
        client, [experiment_id], lambda run: run_is_live(context.instance, run)
    )
    if ended:
        context.log.warning(f"ended {len(ended)} orphaned MLflow runs as FAILED: {ended}")


@dataclass(frozen=True)
class Registration:
    """A logged and registered version, its promotion, and the figure it was decided on."""

    model_name: str
    version: str
    run_id: str
    parent_run_id: str
    experiment_id: str
    promotion: Promotion
    metric: str  # test_<metric> is the promotion figure
    score: float
    champion: ModelVersion | None
    champion_score: float | None


def promote_and_report(
    context: dg.AssetExecutionContext,
    registration: Registration,
    version_tags: dict[str, str],
    warehouse: Path,
    mlflow: MlflowResource,
    run_store: RunStore,
) -> RegisteredModel:
    """Tags, then the alias (a version with an alias is always fully described), then the
    pipeline's MLflow run ends and old run folders go: never the folder of a run still going
    (overlapping runs), nor the build this one read."""
    r = registration
    client = mlflow.client()
    set_alias(client, r.model_name, r.version, r.promotion, version_tags)
    client.set_terminated(r.parent_run_id, status=RunStatus.to_string(RunStatus.FINISHED))
    in_use = {context.run.run_id, warehouse.parent.name}
    pruned = run_store.prune(protect=in_use | runs_in_progress(context.instance))
    context.log.info(
        f"registered {r.model_name} v{r.version} as {r.promotion.alias}: {r.promotion.reason}"
        + (f"; pruned {len(pruned)} old run folders" if pruned else "")
    )
    uri = f"models:/{r.model_name}/{r.version}"
    context.add_output_metadata(
        {
            "model_name": r.model_name,
            "model_version": r.version,
            "alias": r.promotion.alias,
            "promotion": r.promotion.reason,
            f"test_{r.metric}": r.score,
            "champion_before": "none" if r.champion is None else r.champion.version,
            **(
                {f"champion_before_test_{r.metric}_on_this_split": r.champion_score}
                if r.champion_score is not None
                else {}
            ),
            "mlflow_run": dg.MetadataValue.url(mlflow.run_url(r.experiment_id, r.run_id)),
            "model_uri": uri,
        }
    )
    return RegisteredModel(
        r.model_name, r.version, r.promotion.alias, r.promotion.reason, r.run_id, uri
    )


def baseline_name(name: str) -> str:
    """Metric-safe name of a baseline: baseline_<family>."""
    return f"baseline_{name.split(':')[0]}"


def logged_metrics(selected: str, splits: dict[str, dict[str, dict[str, float]]]) -> dict:
    """split -> name -> metrics as MLflow metrics: <split>_<metric> for the selected model,
    <split>_baseline_<family>_<metric> for the others; standard errors left out."""
    return {
        f"{split if name == selected else f'{split}_{baseline_name(name)}'}_{metric}": value
        for split, figures in splits.items()
        for name, values in figures.items()
        for metric, value in values.items()
        if "stderr" not in metric
    }
