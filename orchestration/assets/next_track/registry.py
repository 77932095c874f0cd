"""registered_model: the selected bundle logged as an MLflow pyfunc, registered as next-track,
and promoted champion or challenger with the reason written on the version."""

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import mlflow as mlflow_lib
import numpy as np
import pandas as pd
from mlflow.entities import RunStatus

from ml.evaluation.metrics import ranking_metrics
from ml.registry import (
    current_champion,
    decide_promotion,
    end_orphaned_runs,
    log_and_register,
    log_training_data,
    set_alias,
)
from ml.sequences import Sequences
from ml.serving import next_track_pyfunc
from ml.serving.bundle import load_bundle
from orchestration.assets.next_track.candidates import EXPERIMENT
from orchestration.assets.next_track.dataset import DatasetHandle
from orchestration.assets.next_track.selection import SelectedModel, Selection
from orchestration.resources import MlflowResource, RunStore
from orchestration.run_health import run_is_live, runs_in_progress
from orchestration.settings import DAGSTER_UI_URL, REGISTRY_POOL

MODEL_NAME = "next-track"
PROMOTION_K = 100


@dataclass
class RegisteredModel:
    name: str
    version: str
    alias: str
    reason: str
    mlflow_run_id: str
    model_uri: str


def pyfunc_hit_rate(model, test_keys, k: int) -> float:
    """Hit rate@k of a loaded next-track pyfunc on the test split's keys (any catalogue)."""
    queries = test_keys.column("query").to_pylist()
    labels = test_keys.column("label").to_pylist()
    output = model.predict(pd.DataFrame({"tracks": queries}), params={"k": k})
    top = np.full((len(queries), k), -1, dtype=np.int32)
    vocabulary = {key: i for i, key in enumerate(sorted(set(output["track_key"]) | set(labels)))}
    top[output["row"].to_numpy(), output["rank"].to_numpy() - 1] = [
        vocabulary[key] for key in output["track_key"]
    ]
    label_ids = Sequences.from_lengths(
        np.array([vocabulary[label] for label in labels]), np.ones(len(labels), dtype=np.int64)
    )
    return ranking_metrics(top, label_ids, len(vocabulary), (k,))[f"hit_rate_at_{k}"]


def version_description(selected: SelectedModel, selection: Selection, reason: str) -> str:
    k = selection.k
    lines = [
        f"{selected.candidate} ({selected.family}), selected on validation hit rate@{k} among "
        f"{len(selection.rows)} candidates and baselines. Promotion: {reason}.",
        "",
        f"| model | validation hit_rate@{k} | test hit_rate@{k} | test mrr@{k} |",
        "|---|---|---|---|",
    ]
    for name, test in selected.test.items():
        validation = selected.validation[name][f"hit_rate_at_{k}"]
        lines.append(
            f"| {name} | {validation:.4f} | {test[f'hit_rate_at_{k}']:.4f} | "
            f"{test[f'mrr_at_{k}']:.4f} |"
        )
    return "\n".join(lines)


@dg.asset(
    group_name="next_track",
    kinds={"mlflow"},
    pool=REGISTRY_POOL,
    description="The selected model logged as an MLflow pyfunc and registered as next-track; "
    "champion if there is none, if the data lineage changed, or if it beats the champion on "
    "this test split; otherwise challenger.",
)
def registered_model(
    context: dg.AssetExecutionContext,
    selected_model: SelectedModel,
    candidate_metrics: Selection,
    next_track_dataset: DatasetHandle,
    mlflow: MlflowResource,
    run_store: RunStore,
) -> RegisteredModel:
    selected, dataset = selected_model, next_track_dataset
    experiment_id = mlflow.experiment_id(EXPERIMENT)
    client = mlflow.client()
    ended = end_orphaned_runs(
        client, [experiment_id], lambda run: run_is_live(context.instance, run)
    )
    if ended:
        context.log.warning(f"ended {len(ended)} orphaned MLflow runs as FAILED: {ended}")
    champion = current_champion(client, MODEL_NAME)
    champion_score = None
    if champion is not None:
        model = mlflow_lib.pyfunc.load_model(f"models:/{MODEL_NAME}/{champion.version}")
        champion_score = pyfunc_hit_rate(model, dataset.load().test_keys, PROMOTION_K)
    metric = f"hit_rate_at_{PROMOTION_K}"
    score = selected.test[selected.candidate][metric]
    promotion = decide_promotion(
        score,
        dataset.source,
        None if champion is None else champion.version,
        None if champion is None else champion.tags.get("lineage"),
        champion_score,
    )
    bundle = load_bundle(Path(selected.bundle_dir))
    example = pd.DataFrame({"tracks": [bundle.catalogue.key_list()[:3]]})
    parent = mlflow.parent_run(EXPERIMENT, context)
    metrics = {}
    for name, values in selected.test.items():
        prefix = "test" if name == selected.candidate else f"test_{_short(name)}"
        metrics.update({f"{prefix}_{m}": v for m, v in values.items() if "stderr" not in m})
    for name, values in selected.validation.items():
        prefix = "validation" if name == selected.candidate else f"validation_{_short(name)}"
        metrics.update({f"{prefix}_{m}": v for m, v in values.items() if "stderr" not in m})
    metrics.update(
        {"bundle_megabytes": selected.bundle_bytes / 1e6, "latency_ms_p50": selected.latency_ms_p50}
    )
    tags = {
        "kind": "selected",
        "family": selected.family,
        "candidate": selected.candidate,
        "data_fingerprint": dataset.fingerprint,
        "raw_fingerprint": dataset.raw_fingerprint,
        "lineage": dataset.source,
        "dagster_run_id": context.run.run_id,
        "dagster_run": f"{DAGSTER_UI_URL}/runs/{context.run.run_id}",
    }
    run_id, version = log_and_register(
        client,
        experiment_id,
        parent,
        f"selected: {selected.candidate}",
        MODEL_NAME,
        Path(next_track_pyfunc.__file__),
        Path(selected.bundle_dir),
        {"family": selected.family, **selected.params},
        metrics,
        tags,
        next_track_pyfunc.SIGNATURE,
        example,
        [Path(p) for p in candidate_metrics.plots.values()],
    )
    log_training_data(
        client, run_id, "playlist_splits", Path(dataset.warehouse), dataset.fingerprint
    )
    client.update_model_version(
        MODEL_NAME, version, version_description(selected, candidate_metrics, promotion.reason)
    )
    version_tags = {
        **{k: v for k, v in tags.items() if k != "kind"},
        f"test_{metric}": f"{score:.6f}",
        **{
            f"test_{_short(n)}_{metric}": f"{v[metric]:.6f}"
            for n, v in selected.test.items()
            if n != selected.candidate
        },
    }
    set_alias(client, MODEL_NAME, version, promotion, version_tags)
    client.set_terminated(parent, status=RunStatus.to_string(RunStatus.FINISHED))
    # Never the folder of a run still going (overlapping runs), nor the build this one read.
    in_use = {context.run.run_id, Path(dataset.warehouse).parent.name}
    pruned = run_store.prune(protect=in_use | runs_in_progress(context.instance))
    context.log.info(
        f"registered {MODEL_NAME} v{version} as {promotion.alias}: {promotion.reason}"
        + (f"; pruned {len(pruned)} old run folders" if pruned else "")
    )
    context.add_output_metadata(
        {
            "model_name": MODEL_NAME,
            "model_version": version,
            "alias": promotion.alias,
            "promotion": promotion.reason,
            f"test_{metric}": score,
            "champion_before": "none" if champion is None else champion.version,
            **(
                {f"champion_before_test_{metric}_on_this_split": champion_score}
                if champion_score is not None
                else {}
            ),
            "mlflow_run": dg.MetadataValue.url(mlflow.run_url(experiment_id, run_id)),
            "model_uri": f"models:/{MODEL_NAME}/{version}",
        }
    )
    return RegisteredModel(
        MODEL_NAME, version, promotion.alias, promotion.reason, run_id,
        f"models:/{MODEL_NAME}/{version}",
    )  # fmt: skip


def _short(baseline: str) -> str:
    """Metric-safe name of a baseline: baseline_<family>."""
    return f"baseline_{baseline.split(':')[0]}"
