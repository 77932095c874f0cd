"""registered_model: the selected bundle logged as an MLflow pyfunc, registered as next-track,
and promoted champion or challenger with the reason written on the version."""

from pathlib import Path

import dagster as dg
import pandas as pd

from ml.evaluation.metrics import served_metrics
from ml.evaluation.report import markdown_description
from ml.evaluation.selection import GATE_METRICS, REPORTED_METRICS, tiebreak_of
from ml.registry import ModelCard, log_and_register, log_to_run, training_dataset
from ml.serving import next_track_pyfunc
from ml.serving.bundle import load_bundle
from orchestration.assets.next_track.candidates import EXPERIMENT
from orchestration.assets.next_track.dataset import DatasetHandle
from orchestration.assets.next_track.selection import SelectedModel, Selection
from orchestration.assets.registration import (
    RegisteredModel,
    Registration,
    baseline_name,
    compare_with_champion,
    end_orphans,
    logged_metrics,
    promote_and_report,
    selected_tags,
)
from orchestration.resources import MlflowResource
from orchestration.settings import REGISTRY_POOL
from orchestration.storage import RunStorage

MODEL_NAME = "next-track"
PROMOTION_K = 100


def model_card(selection_metric: str) -> ModelCard:
    return ModelCard(
        name=MODEL_NAME,
        use_case="next_track",
        task="Next track of a playlist: given a playlist's tracks (keys `artist|||title` or "
        '"artist - title"), the k tracks most likely to come next, each with artist, title and '
        "score.",
        selected_on=f"validation {selection_metric}",
        promoted_on=f"test_hit_rate_at_{PROMOTION_K}",
    )


def pyfunc_hit_rate(model, test_keys, k: int) -> float:
    """Hit rate@k of a loaded next-track pyfunc on the test split's keys (any catalogue)."""
    queries = test_keys.column("query").to_pylist()
    labels = [[label] for label in test_keys.column("label").to_pylist()]
    output = model.predict(pd.DataFrame({"tracks": queries}), params={"k": k})
    return served_metrics(output, "track_key", labels, k)[f"hit_rate_at_{k}"]


def version_description(selected: SelectedModel, selection: Selection, reason: str) -> str:
    """A headline (what it was selected and gated on, why its alias) and one row per model, the
    selected one and both baselines: its validation selection metric and the test figures."""
    metric = selection.metric
    headline = (
        f"{selected.candidate} ({selected.family}), selected on validation {metric} "
        f"({tiebreak_of(metric)} breaking ties) among {len(selection.rows)} candidates and "
        f"baselines, at least as good as both baselines on validation {', '.join(GATE_METRICS)}. "
        f"Promotion: {reason}."
    )
    rows = [
        {
            "model": name,
            f"validation {metric}": selected.validation[name][metric],
            **{f"test {m}": test[m] for m in REPORTED_METRICS},
        }
        for name, test in selected.test.items()
    ]
    return markdown_description(headline, rows)


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
    storage: RunStorage,
) -> RegisteredModel:
    selected, dataset = selected_model, next_track_dataset
    experiment_id = mlflow.experiment_id(EXPERIMENT)
    client = mlflow.client()
    end_orphans(context, client, experiment_id)
    metric = f"hit_rate_at_{PROMOTION_K}"
    score = selected.test[selected.candidate][metric]
    comparison = compare_with_champion(
        client, MODEL_NAME, dataset.source, score,
        lambda champion: pyfunc_hit_rate(champion, dataset.load(storage).test_keys, PROMOTION_K),
    )  # fmt: skip
    bundle_dir = storage.stage(selected.bundle_key)
    bundle = load_bundle(bundle_dir)
    example = pd.DataFrame({"tracks": [bundle.catalogue.key_list()[:3]]})
    parent = mlflow.parent_run(EXPERIMENT, context)
    log_to_run(client, parent, {}, logged_metrics(selected.candidate, {"test": selected.test}))
    metrics = logged_metrics(
        selected.candidate, {"test": selected.test, "validation": selected.validation}
    )
    metrics.update(
        {"bundle_megabytes": selected.bundle_bytes / 1e6, "latency_ms_p50": selected.latency_ms_p50}
    )
    tags = selected_tags(
        context, selected.family, selected.candidate, dataset.source,
        {"data_fingerprint": dataset.fingerprint, "raw_fingerprint": dataset.raw_fingerprint},
    )  # fmt: skip
    run_id, version = log_and_register(
        client,
        experiment_id,
        parent,
        f"selected: {selected.candidate}",
        model_card(candidate_metrics.metric),
        Path(next_track_pyfunc.__file__),
        bundle_dir,
        {"family": selected.family, **selected.params},
        metrics,
        tags,
        next_track_pyfunc.SIGNATURE,
        example,
        [storage.stage(key) for key in candidate_metrics.plots.values()],
        training_data=training_dataset(
            "playlist_splits", storage.uri(dataset.warehouse_key), dataset.fingerprint
        ),
    )
    client.update_model_version(
        MODEL_NAME,
        version,
        version_description(selected, candidate_metrics, comparison.promotion.reason),
    )
    version_tags = {
        **{k: v for k, v in tags.items() if k != "kind"},
        f"test_{metric}": f"{score:.6f}",
        **{
            f"test_{baseline_name(n)}_{metric}": f"{v[metric]:.6f}"
            for n, v in selected.test.items()
            if n != selected.candidate
        },
    }
    registration = Registration(
        MODEL_NAME, version, run_id, parent, experiment_id, comparison, metric, score
    )
    return promote_and_report(
        context, registration, version_tags, dataset.warehouse_key, mlflow, storage
    )
