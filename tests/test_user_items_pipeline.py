"""The user-items graph materialized in process on MovieLens-100k (the published protocol's
split, a small grid): ingest, dbt, folds, candidates, the gate, test once, registration as
`user-items`, the user_recommendations table and its dbt checks, and the champion by alias."""

import json

import dagster as dg
import duckdb
import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from ml.evaluation.report import display_number
from ml.registry import CHAMPION
from ml.warehouse import read_table_rows

MODEL = "user-items"
SMALL_USER_ITEMS_GRID = [  # the published two-tower, two of the default grid's rankings
    {
        "family": "two_tower",
        "params": {"embedding_dim": 16, "negatives": 10, "epochs": 30, "patience": 0},
        "variants": [{}, {"recency_prior": 1.5, "popularity_penalty": 1.25}],
    },
    {"family": "ease", "params": {"l2": 200.0}},
    {"family": "item_knn", "params": {"neighbours": 200}, "variants": [{"last_n": 10_000}]},
]


def handover(run_id: str, asset: str) -> dict:
    from orchestration.settings import RUNS_DIR

    return json.loads((RUNS_DIR / run_id / "handover" / f"{asset}.json").read_text())


@pytest.fixture(scope="module")
def user_items_run(prepared_dbt_project, shared_data):
    from orchestration.definitions import defs

    result = defs.resolve_job_def("user_items_pipeline").execute_in_process(
        run_config={
            "ops": {
                "raw_interactions": {"config": {"source": str(shared_data / "movielens_100k")}},
                "user_items_candidates": {"config": {"candidates": SMALL_USER_ITEMS_GRID}},
                "user_recommendations": {"config": {"k": 10}},
            }
        },
        instance=dg.DagsterInstance.get(),
    )
    assert result.success
    return result


def test_every_check_passed_including_the_gate_and_the_tables_dbt_tests(user_items_run):
    evaluations = user_items_run.get_asset_check_evaluations()
    failed = [e.check_name for e in evaluations if not e.passed]
    assert not failed, failed
    names = {e.check_name for e in evaluations}
    assert {"beats_baselines", "user_recommendations_dbt_tests"} <= names
    tests = next(e for e in evaluations if e.check_name == "user_recommendations_dbt_tests")
    assert tests.metadata["tests"].value >= 6  # rows per user, unseen, items known, not nulls
    gate = next(e for e in evaluations if e.check_name == "beats_baselines")
    users = gate.metadata["validation_users"].value
    assert users >= 50 and f"(validation users: {users:,})" in gate.description
    assert "±" in gate.description  # the figures' standard errors


def test_the_champion_beats_popularity_on_test_and_is_registered(user_items_run):
    selected = handover(user_items_run.run_id, "user_items_selected_model")
    mine = selected["test"][selected["candidate"]]
    popularity = next(v for k, v in selected["test"].items() if k.startswith("popularity"))
    assert mine["ndcg_at_10"] > popularity["ndcg_at_10"]
    client = MlflowClient()
    champion = client.get_model_version_by_alias(MODEL, CHAMPION)
    assert champion.tags["candidate"] == selected["candidate"]
    assert champion.tags["promotion"] == "no champion yet"
    assert champion.tags["lineage"].endswith("movielens_100k")
    run = client.get_run(champion.run_id)
    assert run.data.metrics["test_ndcg_at_10"] == pytest.approx(mine["ndcg_at_10"])
    assert run.data.metrics["test_baseline_popularity_ndcg_at_10"] == pytest.approx(
        popularity["ndcg_at_10"]
    )
    # The pipeline's own run carries the data, the selection and the figures, for the runs table.
    parent = client.get_run(run.data.tags["mlflow.parentRunId"]).data
    dataset = handover(user_items_run.run_id, "user_items_dataset")
    assert parent.params["source"] == champion.tags["lineage"]
    assert parent.params["sample_percent"] == "100.0"
    assert parent.params["split_method"] == dataset["split_method"]
    assert parent.params["selected_candidate"] == selected["candidate"]
    validation = selected["validation"][selected["candidate"]]
    assert parent.metrics["validation_ndcg_at_10"] == pytest.approx(validation["ndcg_at_10"])
    assert parent.metrics["test_ndcg_at_10"] == pytest.approx(mine["ndcg_at_10"])
    assert parent.metrics["test_baseline_popularity_ndcg_at_10"] == pytest.approx(
        popularity["ndcg_at_10"]
    )
    assert (
        parent.tags["model_version"] == str(champion.version) and parent.tags["alias"] == CHAMPION
    )
    assert client.get_registered_model(MODEL).tags["promoted_on"] == "test_ndcg_at_10"


def test_user_recommendations_hold_k_unseen_items_for_every_user(user_items_run):
    """Every user of the interactions: those the champion knows (refit on train + validation)
    scored as it learned them, the others from their own items (here, users whose every rating
    is in the test period), else popularity; based_on and the metadata say which."""
    from orchestration.settings import SERVING_DIR, USER_ITEMS_WAREHOUSE_PATH

    with duckdb.connect(str(SERVING_DIR / "user_recommendations.duckdb"), read_only=True) as db:
        table = db.execute("select * from user_recommendations").df()
    interactions = pd.DataFrame(read_table_rows(USER_ITEMS_WAREHOUSE_PATH, "stg_interactions"))
    splits = pd.DataFrame(read_table_rows(USER_ITEMS_WAREHOUSE_PATH, "interaction_splits"))
    items = {row["item_id"] for row in read_table_rows(USER_ITEMS_WAREHOUSE_PATH, "dim_items")}
    users = set(interactions["user_id"])
    assert set(table["user_id"]) == users and len(users) == 943
    assert (table.groupby("user_id").size() == 10).all()
    seen = set(zip(interactions["user_id"], interactions["item_id"], strict=True))
    assert not seen & set(zip(table["user_id"], table["item_id"], strict=True))
    assert set(table["item_id"]) <= items
    assert table["title"].notna().all()
    based_on = table.groupby("user_id")["based_on"].agg(set)
    known = set(splits.loc[splits["split"] != "test", "user_id"])
    assert set(based_on[based_on == {"user"}].index) == known
    assert set(based_on[based_on == {"history"}].index) == users - known != set()
    metadata = (
        dg.DagsterInstance.get()
        .get_latest_materialization_event(dg.AssetKey("user_recommendations"))
        .asset_materialization.metadata
    )
    counts = {b: metadata[f"users_based_on_{b}"].value for b in ("user", "history", "popularity")}
    assert counts == {"user": len(known), "history": len(users - known), "popularity": 0}
    assert metadata["share_based_on_user"].value == display_number(len(known) / len(users))


def test_user_recommendations_name_the_model_they_were_built_from(user_items_run):
    from orchestration.settings import SERVING_DIR

    champion = MlflowClient().get_model_version_by_alias(MODEL, CHAMPION)
    with duckdb.connect(str(SERVING_DIR / "user_recommendations.duckdb"), read_only=True) as db:
        built_from = db.execute(
            "select distinct model_name, model_version, data_fingerprint from user_recommendations"
        ).fetchall()
    assert built_from == [(MODEL, str(champion.version), champion.tags["data_fingerprint"])]


def test_the_champion_by_alias_answers_known_and_unknown_users(user_items_run):
    from orchestration.settings import USER_ITEMS_WAREHOUSE_PATH

    splits = pd.DataFrame(read_table_rows(USER_ITEMS_WAREHOUSE_PATH, "interaction_splits"))
    user = splits.loc[splits["split"] == "train", "user_id"].iloc[0]
    history = splits.loc[splits["user_id"] == user, "item_id"].tolist()
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@{CHAMPION}")
    answer = model.predict(
        pd.DataFrame({"user_id": [user, "nobody-we-know"], "history": [None, history[:5]]}),
        params={"k": 5},
    )
    assert answer.groupby("row").size().tolist() == [5, 5]
    assert not set(answer.loc[answer["row"] == 0, "item_id"]) & set(history)
    assert not set(answer.loc[answer["row"] == 1, "item_id"]) & set(history[:5])
    assert answer["title"].notna().all()


def test_selection_and_registration_each_run_alone_on_the_runs_hand_overs(user_items_run, tmp_path):
    """Each stage materialized alone on the hand-overs the run wrote, into a fresh MLflow store:
    the selection chooses as the run did, and registration makes the first version champion."""
    from orchestration.assets.grid import UnitOutcome
    from orchestration.assets.selection import SelectedModel, Selection
    from orchestration.assets.user_items.dataset import UserItemsDatasetHandle
    from orchestration.assets.user_items.registry import user_items_registered_model
    from orchestration.assets.user_items.selection import user_items_candidate_metrics
    from orchestration.settings import RUNS_DIR
    from tests.alone import fresh_resources, handovers, register_alone, run_alone

    run = handovers(
        RUNS_DIR / user_items_run.run_id,
        {
            "user_items_dataset": UserItemsDatasetHandle,
            "user_items_candidates": list[UnitOutcome],
            "user_items_baseline_candidates": list[UnitOutcome],
            "user_items_candidate_metrics": Selection,
            "user_items_selected_model": SelectedModel,
        },
    )
    resources = fresh_resources(tmp_path)
    grid = ("user_items_dataset", "user_items_candidates", "user_items_baseline_candidates")
    selection = run_alone(user_items_candidate_metrics, {n: run[n] for n in grid}, resources)
    assert selection.selected.name == run["user_items_candidate_metrics"].selected.name
    assert selection.rows == run["user_items_candidate_metrics"].rows

    register_alone(user_items_registered_model, "user_items", run, selection, resources)


def test_one_grid_unit_runs_alone_and_scores_as_in_the_run(user_items_run, tmp_path):
    """The user-items grid materialized alone with the run's EASE unit, on the run's dataset:
    the same validation figures; beside it a unit capped at one train row, refused by the plan
    (no step of its own) and reported skipped with why."""
    from orchestration.assets.grid import UnitOutcome
    from orchestration.assets.user_items.candidates import user_items_candidates
    from orchestration.assets.user_items.dataset import UserItemsDatasetHandle
    from orchestration.settings import RUNS_DIR
    from tests.alone import fresh_resources, handovers, run_alone

    run = handovers(
        RUNS_DIR / user_items_run.run_id,
        {
            "user_items_dataset": UserItemsDatasetHandle,
            "user_items_candidates": list[UnitOutcome],
        },
    )
    (ease,) = [c for c in SMALL_USER_ITEMS_GRID if c["family"] == "ease"]
    inputs = {"user_items_dataset": run["user_items_dataset"]}
    resources = fresh_resources(tmp_path)
    capped = {"family": "ease", "params": {"l2": 50.0}, "max_train_rows": 1}
    alone, refused = run_alone(
        user_items_candidates, inputs, resources, {"candidates": [ease, capped]}
    )
    assert refused.unit == "ease__l2_50" and not refused.results
    assert " train rows > max_train_rows 1: this unit costs too much" in refused.skipped
    (before,) = [o for o in run["user_items_candidates"] if o.unit == alone.unit]
    assert alone.skipped is None and [r.name for r in alone.results] == [
        r.name for r in before.results
    ]
    assert [r.metrics for r in alone.results] == [r.metrics for r in before.results]
