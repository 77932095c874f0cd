"""user-items: the selected configuration refit on train + validation and scored once on test
beside popularity (user_items_selected_model), then logged as the user-items pyfunc, registered
as `user-items` and promoted champion or challenger as next-track is (user_items_registered_model).
"""

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd

from ml.datasets.user_items import UserItemsFold, read_user_histories
from ml.evaluation.candidates import CandidateResult
from ml.evaluation.metrics import served_metrics
from ml.evaluation.report import (
    USER_ITEMS_COLUMNS,
    markdown_description,
    table_rows,
)
from ml.evaluation.user_items import refit_and_test
from ml.registry import ModelCard, log_and_register, log_to_run, training_dataset
from ml.serving import user_items_pyfunc
from ml.serving.bundle import bundle_bytes, load_bundle, save_bundle
from orchestration.assets.registration import (
    RegisteredModel,
    Registration,
    compare_with_champion,
    end_orphans,
    logged_metrics,
    promote_and_report,
    selected_tags,
)
from orchestration.assets.user_items.candidates import EXPERIMENT
from orchestration.assets.user_items.dataset import UserItemsDatasetHandle
from orchestration.assets.user_items.selection import UserItemsSelection
from orchestration.metadata import for_display, rows_table
from orchestration.resources import MlflowResource
from orchestration.settings import REGISTRY_POOL, WORKER_NAME
from orchestration.storage import RunStorage, run_key

MODEL_NAME = "user-items"
PROMOTION_METRIC = "ndcg_at_10"


def model_card(selection_metric: str) -> ModelCard:
    return ModelCard(
        name=MODEL_NAME,
        use_case="user_items",
        task="Items for a user: given a user id (and optionally recent items), the k items "
        "they have not interacted with that they are most likely to want, with their titles.",
        selected_on=f"validation {selection_metric}",
        promoted_on=f"test_{PROMOTION_METRIC}",
    )


@dataclass
class UserItemsSelectedModel:
    candidate: str
    family: str
    params: dict
    bundle_key: str  # the bundle's folder in the run store
    validation: dict[str, dict[str, float]]  # name -> metrics (selected and baselines)
    test: dict[str, dict[str, float]]
    refit_seconds: float
    bundle_bytes: int


@dg.asset(
    group_name="user_items",
    description="The selected configuration refit on train + validation (its kept epochs, no "
    "early stopping) and scored once on test beside popularity; saved with the users it knows "
    "and their histories as the bundle the user-items pyfunc ships.",
)
def user_items_selected_model(
    context: dg.AssetExecutionContext,
    user_items_candidate_metrics: UserItemsSelection,
    user_items_dataset: UserItemsDatasetHandle,
    storage: RunStorage,
) -> UserItemsSelectedModel:
    selection, dataset = user_items_candidate_metrics, user_items_dataset
    fold = dataset.fold(storage, "test")
    chosen = selection.selected
    model, result = refit_and_test(chosen, fold, context.log.info)
    test = {chosen.name: result.metrics}
    for baseline in selection.baselines:
        _, scored = refit_and_test(baseline, fold)
        test[baseline.name] = scored.metrics
    histories = read_user_histories(
        storage.stage(dataset.warehouse_key), fold.users, fold.catalogue
    )
    bundle_key = run_key(context.run.run_id, "user_items", "bundle")
    bundle_dir = save_bundle(
        storage.writable(bundle_key),
        model,
        fold.catalogue,
        {
            "use_case": "user_items",
            "candidate": chosen.name,
            "data_fingerprint": dataset.fingerprint,
            "lineage": dataset.source,
        },
        fold.users,
        histories,
    )
    storage.commit(bundle_key)
    size = bundle_bytes(bundle_dir)
    shown = [
        CandidateResult(**{**r.__dict__, "metrics": test[r.name]})
        for r in [chosen, *selection.baselines]
    ]
    rows = table_rows(shown, 10, chosen.name, USER_ITEMS_COLUMNS)
    context.log.info(
        f"selected {chosen.name}: test NDCG@10 {result.metrics['ndcg_at_10']:.4f}, coverage@10 "
        f"{result.metrics['coverage_at_10']:.4f}"
    )
    context.add_output_metadata(
        for_display(
            {
                "candidate": chosen.name,
                **{f"test_{m}": result.metrics[m] for m in USER_ITEMS_COLUMNS},
                "test_users": fold.summary()["queries"],
                "refit_seconds": result.fit_seconds,
                "test": rows_table(rows),
                "bundle": storage.location(bundle_key),
                "bundle_megabytes": size / 1e6,
                "worker": WORKER_NAME,
            }
        )
    )
    return UserItemsSelectedModel(
        candidate=chosen.name,
        family=chosen.family,
        params=result.params,
        bundle_key=bundle_key,
        validation={r.name: r.metrics for r in [chosen, *selection.baselines]},
        test=test,
        refit_seconds=result.fit_seconds,
        bundle_bytes=size,
    )


def pyfunc_metrics(model, fold: UserItemsFold, k: int = 10) -> dict[str, float]:
    """A loaded user-items pyfunc (any catalogue) scored on the fold's evaluation split: each
    query as its user id and history, item ids compared as strings."""
    assert fold.evaluation is not None
    keys = fold.catalogue.key_list()
    queries, labels = fold.evaluation.queries.history, fold.evaluation.labels
    frame = pd.DataFrame(
        {
            "user_id": fold.query_user_ids(),
            "history": [[keys[i] for i in row if i >= 0] for row in queries.to_lists()],
        }
    )
    output = model.predict(frame, params={"k": k})
    # A label no model can know stays a miss, as in the pipeline's own metrics.
    label_keys = [
        [keys[i] if i >= 0 else f"unknown label {r}.{j}" for j, i in enumerate(row)]
        for r, row in enumerate(labels.to_lists())
    ]
    return served_metrics(output, "item_id", label_keys, k)


def version_description(selected: UserItemsSelectedModel, reason: str) -> str:
    headline = (
        f"{selected.candidate} ({selected.family}), selected on validation NDCG@10. "
        f"Promotion: {reason}."
    )
    rows = [
        {
            "model": name,
            "validation NDCG@10": selected.validation[name][PROMOTION_METRIC],
            "test NDCG@10": test[PROMOTION_METRIC],
            "test HitRate@10": test["hit_rate_at_10"],
            "test Coverage@10": test["coverage_at_10"],
        }
        for name, test in selected.test.items()
    ]
    return markdown_description(headline, rows)


@dg.asset(
    group_name="user_items",
    kinds={"mlflow"},
    pool=REGISTRY_POOL,
    description="The selected user-items bundle logged as an MLflow pyfunc (user ids and "
    "optional recent histories in, top-k unseen items with titles out) and registered as "
    "user-items; champion if there is none, if the data lineage changed, or if it beats the "
    "champion's test NDCG@10 on this split; otherwise challenger.",
)
def user_items_registered_model(
    context: dg.AssetExecutionContext,
    user_items_selected_model: UserItemsSelectedModel,
    user_items_candidate_metrics: UserItemsSelection,
    user_items_dataset: UserItemsDatasetHandle,
    mlflow: MlflowResource,
    storage: RunStorage,
) -> RegisteredModel:
    selected, dataset = user_items_selected_model, user_items_dataset
    experiment_id = mlflow.experiment_id(EXPERIMENT)
    client = mlflow.client()
    end_orphans(context, client, experiment_id)
    score = selected.test[selected.candidate][PROMOTION_METRIC]
    comparison = compare_with_champion(
        client, MODEL_NAME, dataset.source, score,
        lambda champion: pyfunc_metrics(champion, dataset.fold(storage, "test"))[PROMOTION_METRIC],
    )  # fmt: skip
    bundle_dir = storage.stage(selected.bundle_key)
    bundle = load_bundle(bundle_dir)
    metrics = logged_metrics(
        selected.candidate, {"test": selected.test, "validation": selected.validation}
    )
    metrics.update(
        {"bundle_megabytes": selected.bundle_bytes / 1e6, "refit_seconds": selected.refit_seconds}
    )
    tags = selected_tags(
        context, selected.family, selected.candidate, dataset.source,
        {"data_fingerprint": dataset.fingerprint},
    )  # fmt: skip
    parent = mlflow.parent_run(EXPERIMENT, context)
    log_to_run(client, parent, {}, logged_metrics(selected.candidate, {"test": selected.test}))
    run_id, version = log_and_register(
        client,
        experiment_id,
        parent,
        f"selected: {selected.candidate}",
        model_card(user_items_candidate_metrics.metric),
        Path(user_items_pyfunc.__file__),
        bundle_dir,
        {"family": selected.family, **selected.params},
        metrics,
        tags,
        user_items_pyfunc.SIGNATURE,
        user_items_pyfunc.example_input(bundle),
        [storage.stage(key) for key in user_items_candidate_metrics.plots.values()],
        training_data=training_dataset(
            "interaction_splits", storage.uri(dataset.warehouse_key), dataset.fingerprint
        ),
    )
    client.update_model_version(
        MODEL_NAME, version, version_description(selected, comparison.promotion.reason)
    )
    version_tags = {
        **{k: v for k, v in tags.items() if k != "kind"},
        f"test_{PROMOTION_METRIC}": f"{score:.6f}",
    }
    registration = Registration(
        MODEL_NAME, version, run_id, parent, experiment_id, comparison, PROMOTION_METRIC, score
    )
    return promote_and_report(
        context, registration, version_tags, dataset.warehouse_key, mlflow, storage
    )
