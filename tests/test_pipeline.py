"""The whole asset graph materialized in-process on small synthetic data, end to end: tables,
dbt checks, training, evaluation, MLflow registration and promotion, and HTTP serving."""

import json
import shutil
import urllib.request

import dagster as dg
import mlflow
import pandas as pd
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from ml.registry import CHALLENGER, CHAMPION, MODEL_NAME
from ml.warehouse import read_split, read_table_rows
from tests.servers import free_port, server

SYNTHETIC = {"raw_playlist_events": {"config": {"synthetic_playlists": 1200, "synthetic_seed": 3}}}
TUTORIAL_ONLY = {  # a deliberately worse model: the tutorial's setup alone
    "track_embeddings": {"config": {"grid": [{}]}},
    "candidate_metrics": {
        "config": {"strategies": [{"kind": "last", "unknown": "random", "exclude_seen": False}]}
    },
}


def run_job(run_config: dict, raise_on_error: bool = True):
    from orchestration.definitions import defs

    return defs.resolve_job_def("full_pipeline").execute_in_process(
        run_config={"ops": run_config},
        instance=dg.DagsterInstance.get(),
        raise_on_error=raise_on_error,
    )


@pytest.fixture(scope="module")
def pipeline_run(prepared_dbt_project):
    result = run_job(SYNTHETIC)
    assert result.success
    return result, dg.DagsterInstance.get()


@pytest.fixture(scope="module")
def models_dir(pipeline_run):
    from orchestration.settings import MODELS_DIR

    return MODELS_DIR


def test_raw_and_dbt_tables(pipeline_run):
    from orchestration.settings import RAW_EVENTS_PATH, WAREHOUSE_PATH

    _, instance = pipeline_run
    raw_rows = pq.read_metadata(RAW_EVENTS_PATH).num_rows
    stats = read_table_rows(WAREHOUSE_PATH, "dataset_stats")[0]
    assert stats["rows_in"] == raw_rows > 0
    assert stats["rows_blank_artist"] > 0  # the generator's dirty rows were dropped, and counted
    assert (
        stats["rows_clean"]
        == raw_rows - stats["rows_incomplete"] - stats["rows_repeated_in_playlist"]
    )
    assert stats["playlists"] + stats["playlists_too_short"] == stats["playlists_clean"] == 1200
    splits = {r["split"] for r in read_table_rows(WAREHOUSE_PATH, "playlist_splits")}
    assert splits == {"train", "validation", "test"}

    raw = instance.get_latest_materialization_event(dg.AssetKey("raw_playlist_events"))
    assert raw.asset_materialization.metadata["dagster/row_count"].value == raw_rows
    tracks = instance.get_latest_materialization_event(dg.AssetKey("dim_tracks"))
    assert tracks.asset_materialization.metadata["dagster/row_count"].value == stats["tracks_clean"]
    summary = instance.get_latest_materialization_event(dg.AssetKey("dataset_stats"))
    shown = summary.asset_materialization.metadata
    assert shown["rows_in"].value == raw_rows
    assert shown["rows_blank_artist"].value == stats["rows_blank_artist"]


def test_all_checks_passed(pipeline_run):
    result, _ = pipeline_run
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) >= 30
    assert all(e.passed for e in evaluations), [e.check_name for e in evaluations if not e.passed]
    checked = {e.asset_key.to_user_string() for e in evaluations}
    assert {"stg_playlist_events", "playlist_splits", "dim_tracks", "selected_model"} <= checked
    names = {e.check_name for e in evaluations}
    assert {
        "validation_vocabulary_coverage",
        "selected_model_beats_popularity",
        "registered_model_is_fresh",
    } <= names


def test_every_candidate_and_baseline_was_evaluated_on_validation(models_dir):
    metrics = json.loads((models_dir / "candidate_metrics.json").read_text())
    results = metrics["results"]
    assert {"most_popular", "sequential_rules"} <= set(results)
    # 4 grid candidates (tutorial first) x 5 query strategies
    assert len(metrics["candidates"]) == 20
    assert "cbow_d48_w10_mc3_e30_ns0.75+last_keep_seen_random" in results
    for values in results.values():
        assert (
            0 <= values["hit_rate_at_10"] <= values["hit_rate_at_20"] <= values["hit_rate_at_100"]
        )


def test_chosen_model_beats_popularity_on_test(models_dir):
    selected = json.loads((models_dir / "selected_model.json").read_text())
    test = selected["test"]
    assert test[selected["candidate"]]["hit_rate_at_100"] > test["most_popular"]["hit_rate_at_100"]


def test_champion_is_registered_with_test_metrics(pipeline_run, models_dir):
    client = MlflowClient()
    champion = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    run = client.get_run(champion.run_id)
    selected = json.loads((models_dir / "selected_model.json").read_text())
    expected = selected["test"][selected["candidate"]]["hit_rate_at_100"]
    assert run.data.metrics["test_hit_rate_at_100"] == pytest.approx(expected)
    for name in ("test_mrr_at_100", "test_ndcg_at_100", "test_coverage_at_100"):
        assert name in run.data.metrics
    assert "test_most_popular_hit_rate_at_100" in run.data.metrics
    assert run.data.tags["dagster_run_id"] == pipeline_run[0].run_id
    candidate_runs = mlflow.search_runs(
        experiment_names=["next-track"], filter_string="tags.kind = 'candidate'"
    )
    assert len(candidate_runs) >= 20


def test_loaded_champion_recommends_unheard_tracks_with_names(pipeline_run):
    from orchestration.settings import WAREHOUSE_PATH

    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    query = read_split(WAREHOUSE_PATH, "test").sequences[0]
    tracks = read_table_rows(WAREHOUSE_PATH, "dim_tracks")
    names = {t["track_key"]: (t["artist"], t["title"]) for t in tracks}
    typed = [f"{names[k][0]} - {names[k][1]}".upper() for k in query]  # as a user types them
    by_key = model.predict(pd.DataFrame({"tracks": [query]}), params={"k": 25})
    by_name = model.predict(pd.DataFrame({"tracks": [typed]}), params={"k": 25})
    assert len(by_key) == 25 and by_key["rank"].tolist() == list(range(1, 26))
    assert not set(by_key["track_key"]) & set(query)
    assert by_key.equals(by_name)
    assert all(names[k] == (a, t) for k, a, t in by_key[["track_key", "artist", "title"]].values)


def test_worse_model_becomes_challenger(pipeline_run):
    client = MlflowClient()
    champion_before = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    result = run_job({**SYNTHETIC, **TUTORIAL_ONLY})
    assert result.success
    challenger = client.get_model_version_by_alias(MODEL_NAME, CHALLENGER)
    assert client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version == (
        champion_before.version
    )
    assert int(challenger.version) > int(champion_before.version)
    worse = client.get_run(challenger.run_id).data.metrics["test_hit_rate_at_100"]
    better = client.get_run(champion_before.run_id).data.metrics["test_hit_rate_at_100"]
    assert worse < better
    # Same data, same split: the champion re-scored through its MLflow pyfunc gives exactly the
    # figure the pipeline logged for it.
    registered = dg.DagsterInstance.get().get_latest_materialization_event(
        dg.AssetKey("registered_model")
    )
    rescored = registered.asset_materialization.metadata[
        "champion_before_test_hit_rate_at_100_on_this_split"
    ].value
    assert rescored == pytest.approx(better)


def test_served_model_answers_like_the_loaded_one(pipeline_run, tmp_path):
    from orchestration.settings import WAREHOUSE_PATH

    port = free_port()
    queries = read_split(WAREHOUSE_PATH, "validation").sequences[:3]
    loaded = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    expected = loaded.predict(pd.DataFrame({"tracks": queries}), params={"k": 5})
    command = [
        shutil.which("mlflow"), "models", "serve", "-m", f"models:/{MODEL_NAME}@{CHAMPION}",
        "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    with server(command, f"http://127.0.0.1:{port}/ping", tmp_path / "serve.log"):
        body = json.dumps(
            {"dataframe_records": [{"tracks": q} for q in queries], "params": {"k": 5}}
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            served = pd.DataFrame(json.load(response)["predictions"])
    assert len(served) == 15
    assert served["track_key"].tolist() == expected["track_key"].tolist()
    assert served["score"].tolist() == pytest.approx(expected["score"].tolist(), abs=1e-6)


def test_model_not_beating_popularity_is_never_registered(pipeline_run, monkeypatch):
    """The blocking check stops registration: here "most popular" is made an oracle."""
    import orchestration.assets.model as model_assets
    from ml.baselines import SequentialRules
    from orchestration.definitions import defs
    from orchestration.settings import WAREHOUSE_PATH

    test = read_split(WAREHOUSE_PATH, "test")
    answers = {tuple(q): label for q, label in zip(test.sequences, test.labels, strict=True)}

    class OraclePopular:
        name = "most_popular"

        def recommend(self, queries, k):
            return [[answers[tuple(q)]] for q in queries]

    monkeypatch.setattr(
        model_assets, "all_baselines", lambda train: [OraclePopular(), SequentialRules(train)]
    )
    client = MlflowClient()
    versions_before = len(client.search_model_versions(f"name='{MODEL_NAME}'"))
    result = defs.resolve_job_def("full_pipeline").execute_in_process(
        instance=dg.DagsterInstance.get(),
        asset_selection=[dg.AssetKey("selected_model"), dg.AssetKey("registered_model")],
        raise_on_error=False,
    )
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["selected_model_beats_popularity"] is False
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "selected_model" in materialized and "registered_model" not in materialized
    assert len(client.search_model_versions(f"name='{MODEL_NAME}'")) == versions_before


def test_bad_source_fails_before_dbt_and_keeps_previous_data(pipeline_run, tmp_path):
    from orchestration.settings import RAW_EVENTS_PATH

    before = pq.read_table(RAW_EVENTS_PATH)
    bad = tmp_path / "spotify_dataset.csv"
    bad.write_text("not,the,right,header\n")
    result = run_job({"raw_playlist_events": {"config": {"source": str(bad)}}}, False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "raw_playlist_events"
    assert str(bad) in failure.event_specific_data.error.message
    assert "dbt_models" not in {e.step_key for e in result.all_events if e.is_step_success}
    assert pq.read_table(RAW_EVENTS_PATH).equals(before)
