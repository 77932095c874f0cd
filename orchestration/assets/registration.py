"""What both registration assets (next-track, user-items) do around their own model: end the
MLflow runs dead Dagster runs left open, decide champion or challenger against the current
champion rescored on this run's test split, describe the version, and once it is described set
its alias, close the pipeline's MLflow run, prune old run folders and report."""

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import mlflow as mlflow_lib
from mlflow import MlflowClient
from mlflow.entities import RunStatus
from mlflow.entities.model_registry import ModelVersion

from ml.registry import (
    Promotion,
    current_champion,
    decide_promotion,
    end_orphaned_runs,
    set_alias,
    tracking_at,
)
from orchestration.metadata import for_display
from orchestration.resources import MlflowResource
from orchestration.run_health import run_is_live, runs_in_progress
from orchestration.settings import DAGSTER_UI_URL, WORKER_NAME
from orchestration.storage import RUNS, RunStorage


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
class ChampionComparison:
    promotion: Promotion
    champion: ModelVersion | None
    champion_score: float | None  # the champion's figure on this run's test split


def compare_with_champion(
    client: MlflowClient,
    model_name: str,
    lineage: str,
    score: float,
    rescore: Callable[[mlflow_lib.pyfunc.PyFuncModel], float],
) -> ChampionComparison:
    """The current champion, loaded through its pyfunc and ``rescore``d on this run's test
    split (whatever catalogue it knows), and the promotion that follows."""
    champion = current_champion(client, model_name)
    champion_score = None
    if champion is not None:
        with tracking_at(client.tracking_uri):
            champion_model = mlflow_lib.pyfunc.load_model(
                f"models:/{model_name}/{champion.version}"
            )
        champion_score = rescore(champion_model)
    promotion = decide_promotion(
        score,
        lineage,
        None if champion is None else champion.version,
        None if champion is None else champion.tags.get("lineage"),
        champion_score,
    )
    return ChampionComparison(promotion, champion, champion_score)


def selected_tags(
    context: dg.AssetExecutionContext,
    family: str,
    candidate: str,
    lineage: str,
    fingerprints: dict[str, str],
) -> dict[str, str]:
    """The tags of the selected model's MLflow run (its version carries them too, without
    ``kind``)."""
    return {
        "kind": "selected",
        "family": family,
        "candidate": candidate,
        **fingerprints,
        "lineage": lineage,
        "dagster_run_id": context.run.run_id,
        "dagster_run": f"{DAGSTER_UI_URL}/runs/{context.run.run_id}",
        "worker": WORKER_NAME,
    }


@dataclass(frozen=True)
class Registration:
    """A logged and registered version, its promotion, and the figure it was decided on."""

    model_name: str
    version: str
    run_id: str
    parent_run_id: str
    experiment_id: str
    comparison: ChampionComparison
    metric: str  # test_<metric> is the promotion figure
    score: float


def promote_and_report(
    context: dg.AssetExecutionContext,
    registration: Registration,
    version_tags: dict[str, str],
    warehouse_key: str,
    mlflow: MlflowResource,
    storage: RunStorage,
) -> RegisteredModel:
    """Tags, then the alias (a version with an alias is always fully described), then the
    pipeline's MLflow run ends and old run folders go: never the folder of a run still going
    (overlapping runs), nor the build this one read (``warehouse_key``)."""
    r = registration
    promotion, champion = r.comparison.promotion, r.comparison.champion
    champion_score = r.comparison.champion_score
    client = mlflow.client()
    champion_before = None if champion is None else champion.version
    set_alias(client, r.model_name, r.version, promotion, version_tags, champion_before)
    # The pipeline's run says what it registered, as columns of the runs table.
    for key, value in {"model_version": r.version, "alias": promotion.alias}.items():
        client.set_tag(r.parent_run_id, key, value)
    client.set_terminated(r.parent_run_id, status=RunStatus.to_string(RunStatus.FINISHED))
    parts = warehouse_key.split("/")
    in_use = {context.run.run_id, *([parts[1]] if parts[0] == RUNS else [])}
    pruned = storage.prune(protect=in_use | runs_in_progress(context.instance))
    context.log.info(
        f"registered {r.model_name} v{r.version} as {promotion.alias}: {promotion.reason}"
        + (f"; pruned {len(pruned)} old run folders" if pruned else "")
    )
    uri = f"models:/{r.model_name}/{r.version}"
    context.add_output_metadata(
        for_display(
            {
                "model_name": r.model_name,
                "model_version": r.version,
                "alias": promotion.alias,
                "promotion": promotion.reason,
                f"test_{r.metric}": r.score,
                "champion_before": champion_before or "none",
                **(
                    {f"champion_before_test_{r.metric}_on_this_split": champion_score}
                    if champion_score is not None
                    else {}
                ),
                "mlflow_run": dg.MetadataValue.url(mlflow.run_url(r.experiment_id, r.run_id)),
                "mlflow_model_version": dg.MetadataValue.url(
                    mlflow.model_version_url(r.model_name, r.version)
                ),
                "model_uri": uri,
                "worker": WORKER_NAME,
            }
        )
    )
    return RegisteredModel(
        r.model_name, r.version, promotion.alias, promotion.reason, r.run_id, uri
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
