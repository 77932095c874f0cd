"""user-items: the selected configuration refit on train + validation and scored once on test
beside popularity (user_items_selected_model), then logged as the user-items pyfunc, registered
as `user-items` and promoted champion or challenger as next-track is
(user_items_registered_model)."""

import dagster as dg
import pandas as pd

from ml.datasets.user_items import UserItemsFold, read_user_histories
from ml.evaluation.metrics import served_metrics
from ml.evaluation.report import USER_ITEMS_COLUMNS, table_rows
from ml.evaluation.user_items import refit_and_test
from ml.serving import user_items_pyfunc
from ml.serving.bundle import bundle_bytes, save_bundle
from orchestration.assets.registered_model import registered_model_asset
from orchestration.assets.selection import (
    SelectedModel,
    Selection,
    report_selected,
    selected_model,
    tested,
)
from orchestration.assets.user_items.candidates import EXPERIMENT
from orchestration.assets.user_items.dataset import UserItemsDatasetHandle
from orchestration.storage import RunStorage, run_key
from orchestration.use_case import UseCase

PROMOTION_METRIC = "ndcg_at_10"


@dg.asset(
    description="The selected configuration refit on train + validation (its kept epochs, no "
    "early stopping) and scored once on test beside popularity; saved with the users it knows "
    "and their histories as the bundle the user-items pyfunc ships.",
)
def user_items_selected_model(
    context: dg.AssetExecutionContext,
    user_items_candidate_metrics: Selection,
    user_items_dataset: UserItemsDatasetHandle,
    storage: RunStorage,
) -> SelectedModel:
    selection, dataset = user_items_candidate_metrics, user_items_dataset
    fold = dataset.fold(storage, "test")
    chosen = selection.selected
    model, result = refit_and_test(chosen, fold, context.log.info)
    test = {chosen.name: result.metrics}
    for baseline in selection.baselines:
        test[baseline.name] = refit_and_test(baseline, fold)[1].metrics
    histories = read_user_histories(
        storage.stage(dataset.warehouse_key), fold.users, fold.catalogue
    )
    bundle_key = run_key(context.run.run_id, "user_items", "bundle")
    facts = {"use_case": "user_items", "candidate": chosen.name, "lineage": dataset.source}
    facts |= {"data_fingerprint": dataset.fingerprint}
    bundle = save_bundle(
        storage.writable(bundle_key), model, fold.catalogue, facts, fold.users, histories
    )
    storage.commit(bundle_key)
    selected = selected_model(
        selection,
        test,
        bundle_key,
        bundle_bytes(bundle),
        {"refit_seconds": result.fit_seconds},
        params=result.params,
    )
    rows = table_rows(tested(selection, test), 10, chosen.name, USER_ITEMS_COLUMNS)
    metadata = {f"test_{m}": result.metrics[m] for m in USER_ITEMS_COLUMNS}
    metadata |= {"test_users": fold.summary()["queries"], "refit_seconds": result.fit_seconds}
    report_selected(context, selected, rows, storage, metadata, logged=("coverage_at_10",))
    return selected


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


def champion_ndcg(champion, dataset: UserItemsDatasetHandle, storage: RunStorage) -> float:
    return pyfunc_metrics(champion, dataset.fold(storage, "test"))[PROMOTION_METRIC]


USER_ITEMS = UseCase(
    name="user_items",
    experiment=EXPERIMENT,
    model_name="user-items",
    task="Items for a user: given a user id (and optionally recent items), the k items "
    "they have not interacted with that they are most likely to want, with their titles.",
    query_noun="users",
    promotion_metric=PROMOTION_METRIC,
    reported_metrics=("ndcg_at_10", "hit_rate_at_10", "coverage_at_10"),
    pyfunc=user_items_pyfunc,
    training_table="interaction_splits",
    rescore=champion_ndcg,
    fingerprints=lambda dataset: {"data_fingerprint": dataset.fingerprint},
    tag_baselines=False,
    job_description="user-items: ingest interactions, dbt build, the candidate grid (two-tower, "
    "EASE, item-kNN, popularity), selection, test, registration, the user_recommendations table.",
    schedule_cron="0 5 * * 1",  # Mondays 05:00 UTC, after the next-track run
    schedule_description="Re-ingest the interactions (run config raw_interactions.source; "
    "default: the published playlist rows), rebuild, retrain, register, refresh "
    "user_recommendations.",
)
MODEL_NAME = USER_ITEMS.model_name
user_items_registered_model = registered_model_asset(USER_ITEMS, UserItemsDatasetHandle)
