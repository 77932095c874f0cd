"""The next-track graph materialized in process on small synthetic data, end to end: tables, dbt
checks, the candidate grid, selection across families, the gate, MLflow registration and
promotion, and HTTP serving."""

import json
import os
import re
import shutil
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import mlflow
import pandas as pd
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from ml.evaluation.report import display_number
from ml.registry import CHALLENGER, CHAMPION
from ml.warehouse import read_table_rows
from tests.configs import SMALL_GRID
from tests.servers import free_port, server

MODEL = "next-track"
SYNTHETIC = {"raw_playlist_events": {"config": {"synthetic_playlists": 3000, "synthetic_seed": 3}}}
TABLED_TRACKS = 300  # of the catalogue's thousands: the table holds the most-played only
TRACKS_TABLE = {"track_recommendations": {"config": {"max_tracks": TABLED_TRACKS}}}


def grid(word2vec: list[dict], rules: list[dict], second_stage: bool = True) -> dict:
    """Only these units; ``second_stage``: the hybrid and the reranker over them."""
    return {
        "track_embeddings": {"config": {"candidates": word2vec}},
        "sequential_rules_candidates": {"config": {"candidates": rules}},
        "neighbourhood_candidates": {"config": {"candidates": []}},
        "slist_candidates": {"config": {"candidates": []}},
        "next_track_candidate_metrics": {
            "config": {"hybrid": second_stage, "reranker": second_stage}
        },
    }


def run_job(ops: dict, raise_on_error: bool = True, **kwargs):
    """Every run of this module tables TABLED_TRACKS tracks (a later run whose champion is
    another rewrites the table; one that keeps the champion keeps it)."""
    from orchestration.definitions import defs

    return defs.resolve_job_def("next_track_pipeline").execute_in_process(
        run_config={"ops": {**TRACKS_TABLE, **ops}},
        instance=dg.DagsterInstance.get(),
        raise_on_error=raise_on_error,
        **kwargs,
    )


def handover(run_id: str, asset: str) -> dict:
    from orchestration.settings import RUNS_DIR

    return json.loads((RUNS_DIR / run_id / "handover" / f"{asset}.json").read_text())


@pytest.fixture(scope="module")
def pipeline_run(prepared_dbt_project):
    result = run_job({**SYNTHETIC, **SMALL_GRID})
    assert result.success
    return result


def test_raw_and_dbt_tables(pipeline_run):
    from orchestration.settings import RAW_EVENTS_PATH, WAREHOUSE_PATH

    instance = dg.DagsterInstance.get()
    raw_rows = pq.read_metadata(RAW_EVENTS_PATH).num_rows
    stats = read_table_rows(WAREHOUSE_PATH, "dataset_stats")[0]
    assert stats["rows_in"] == raw_rows > 0
    assert stats["rows_blank_artist"] > 0  # the generator's dirty rows were dropped, and counted
    assert (
        stats["rows_clean"]
        == raw_rows - stats["rows_incomplete"] - stats["rows_repeated_in_playlist"]
    )
    assert stats["playlists"] + stats["playlists_too_short"] == stats["playlists_clean"] == 3000
    build = read_table_rows(WAREHOUSE_PATH, "next_track_build")[0]
    raw = instance.get_latest_materialization_event(dg.AssetKey("raw_playlist_events"))
    meta = raw.asset_materialization.metadata
    assert meta["dagster/row_count"].value == raw_rows
    assert build["build_id"] == pipeline_run.run_id
    assert build["raw_fingerprint"] == meta["raw_fingerprint"].value
    assert Path(meta["path"].value).parent.parent.name == pipeline_run.run_id  # run's own file


def test_a_passing_dbt_build_leaves_no_target_folder_behind(pipeline_run):
    """dagster-dbt's folder for the run's build (target/<op>-<run id[:7]>-<id>) is removed once
    its artifacts are read: one per run would pile up."""
    from orchestration.project import dbt_project

    assert (dbt_project.project_dir / "target" / "manifest.json").exists()  # the right folder
    assert not list((dbt_project.project_dir / "target").glob(f"*-{pipeline_run.run_id[:7]}-*"))


def test_a_serving_table_check_whose_dbt_tests_only_warn_fails_as_a_warning(tmp_path):
    """A dbt test of ``severity: warn`` that warns fails the check at WARN severity (as
    dagster-dbt reports it), not as an error; a failing test beside it makes it an error; no
    test selected at all is an error."""
    from orchestration.assets.champion_tables import dbt_tests_check_result

    def result(name: str, status: str) -> dict:
        return {"unique_id": f"test.p.{name}", "status": status, "message": f"Got {name}"}

    manifest = {"nodes": {}}
    warned = dbt_tests_check_result([result("a", "pass"), result("b", "warn")], manifest, tmp_path)
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN
    assert warned.description == "1/2 dbt tests passed; warned: node test.p.b: warn: Got b"
    assert warned.metadata["dbt_target"].value == str(tmp_path)
    both = dbt_tests_check_result([result("b", "warn"), result("c", "fail")], manifest, tmp_path)
    assert not both.passed and both.severity == dg.AssetCheckSeverity.ERROR
    assert both.description == (
        "0/2 dbt tests passed; failed: node test.p.c: fail: Got c; "
        "warned: node test.p.b: warn: Got b"
    )
    nothing = dbt_tests_check_result([], manifest, tmp_path)
    assert not nothing.passed and nothing.severity == dg.AssetCheckSeverity.ERROR
    passed = dbt_tests_check_result([result("a", "pass")], manifest, tmp_path)
    assert passed.passed and "dbt_target" not in passed.metadata


def test_the_serving_tables_dbt_tests_keep_their_folder_only_when_they_fail(
    pipeline_run, tmp_path, monkeypatch
):
    """The table's dbt tests, run again on copies of the run's published table and warehouse:
    passing, dagster-dbt's folder for the command (target/<id>) is removed; with a track
    recommended after itself they fail, and the folder stays, with its dbt.log, named in the
    check's metadata."""
    import duckdb

    from orchestration.assets.champion_tables import dbt_source_tests
    from orchestration.definitions import defs
    from orchestration.settings import SERVING_FOLDER, WAREHOUSE_KEY
    from orchestration.storage import RunStorage

    table = f"{SERVING_FOLDER}/track_recommendations.duckdb"
    for key in (WAREHOUSE_KEY, table):
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(RunStorage().stage(key), tmp_path / key)
    copies = RunStorage(url=tmp_path.as_uri())
    dbt, invocations = defs.resources["dbt"], []
    cli = type(dbt).cli

    def recorded(self, *args, **kwargs):
        invocations.append(cli(self, *args, **kwargs))
        return invocations[-1]

    monkeypatch.setattr(type(dbt), "cli", recorded)
    check = ("serving_next_track", "track_recommendations", WAREHOUSE_KEY)

    passed = dbt_source_tests(dbt, copies, *check)
    assert passed.passed and "dbt_target" not in passed.metadata
    assert not invocations[0].target_path.exists()

    with duckdb.connect(str(tmp_path / table)) as connection:
        connection.execute("update track_recommendations set next_track_key = track_key")
    failed = dbt_source_tests(dbt, copies, *check)
    # the test by name and what it requires, not by the hash that ends its unique id
    assert re.search(
        r"\d/\d dbt tests passed; failed: test source_expression_is_true_", failed.description
    )
    assert "(requires: next_track_key != track_key): fail: Got " in failed.description
    kept = Path(failed.metadata["dbt_target"].value)
    assert kept == invocations[1].target_path and (kept / "dbt.log").exists()
    shutil.rmtree(kept)


def test_summary_says_why_the_table_holds_fewer_tracks_than_the_data(pipeline_run, capsys):
    """`make run`'s summary of this run: the data's tracks line, the table's, and the reason."""
    from orchestration.storage import RunStorage
    from orchestration.summary import print_summary

    print_summary(dg.DagsterInstance.get(), pipeline_run.run_id, 1.0, RunStorage())
    summary = capsys.readouterr().out
    clean = int(re.search(r"^tracks +([\d,]+)$", summary, re.MULTILINE)[1].replace(",", ""))
    known = handover(pipeline_run.run_id, "next_track_dataset")["summary"]["tracks"]
    assert TABLED_TRACKS < known < clean
    assert f"for {TABLED_TRACKS:,} tracks in " in summary
    assert (
        f"\n  {TABLED_TRACKS:,} tracks, not {clean:,}: the model knows the {known:,} tracks of "
        f"train playlists; the other {clean - known:,} occur only in validation or test "
        f"playlists or in playlists too short to split; the table holds the {TABLED_TRACKS:,} "
        "most played ("
    ) in summary
    halving = "\n  grid units not fitted in full: 1 (successive halving stopped 1 at its rung; "
    assert halving in summary


def test_all_checks_passed(pipeline_run):
    evaluations = pipeline_run.get_asset_check_evaluations()
    assert len(evaluations) >= 30
    assert all(e.passed for e in evaluations), [e.check_name for e in evaluations if not e.passed]
    names = {e.check_name for e in evaluations}
    assert {
        "validation_labels_known",
        "beats_baselines",
        "registered_model_is_fresh",
    } <= names
    checked = {e.asset_key.to_user_string() for e in evaluations}
    assert "raw_playlist_events" in checked  # dbt source tests are checks of the raw asset


def test_every_family_and_baseline_is_in_the_validation_table(pipeline_run):
    selection = handover(pipeline_run.run_id, "next_track_candidate_metrics")
    rows = {row["candidate"]: row for row in selection["rows"]}
    families = {row["family"] for row in rows.values()}
    assert {
        "word2vec", "sequential_rules", "item_knn", "session_knn", "popularity", "hybrid"
    } <= families  # fmt: skip
    assert sum(1 for r in rows.values() if r["role"] == "baseline") == 2
    assert [r["role"] for r in rows.values()].count("selected") == 1
    assert "word2vec:cbow_d48_w10_mc3_e15_ns0.75_s0.001+in_out_last1" in rows
    for row in rows.values():
        assert 0 <= row["hit_rate_at_10"] <= row["hit_rate_at_20"] <= row["hit_rate_at_100"]
    selected = selection["selected"]
    for baseline in selection["baselines"]:
        assert selected["metrics"]["hit_rate_at_100"] > baseline["metrics"]["hit_rate_at_100"]
    from orchestration.settings import DATA_DIR  # the embedded run store

    assert (DATA_DIR / selection["plots"]["hit_rate_at_k"]).stat().st_size > 10_000
    # Each family's best with its share of queries whose label its list alone holds; those
    # kept for the second stage are the best and those at or above the floor.
    event = dg.DagsterInstance.get().get_latest_materialization_event(
        dg.AssetKey("next_track_candidate_metrics")
    )
    pool = event.asset_materialization.metadata["second_stage_components"].value
    shares = {entry["candidate"]: entry["share"] for entry in pool["unique_label_share"]}
    assert {row["family"] for row in rows.values() if row["candidate"] in shares} == (
        families - {"popularity", "hybrid", "reranker"}
    )
    best = next(iter(shares))
    singles = [r for r in selection["rows"] if r["role"] != "baseline"]
    singles = [r for r in singles if r["family"] not in {"hybrid", "reranker"}]
    assert rows[best]["family"] == singles[0]["family"]  # in selection order
    assert pool["kept"] == [n for n, share in shares.items() if n == best or share >= 0.005]


def test_successive_halving_stops_the_clearly_worse_unit_at_the_rung(pipeline_run):
    """The rules grid screens its two units on a quarter of train: the one that keeps a single
    successor per track stops there, named with its figures in the grid, the selection's
    skipped units and MLflow; the other goes on to the full fit."""
    outcomes = {o.unit: o for o in pipeline_run.output_for_node("sequential_rules_candidates")}
    stopped, kept = (
        outcomes["sequential_rules__w10_keep1"],
        outcomes["sequential_rules__w10_keep500"],
    )
    assert stopped.results == [] and len(kept.results) == 3
    assert stopped.skipped.startswith("successive halving: stopped at the rung: ")
    assert "sequential_rules__w10_keep500's" in stopped.skipped
    instance = dg.DagsterInstance.get()
    grid = instance.get_latest_materialization_event(dg.AssetKey("sequential_rules_candidates"))
    metadata = grid.asset_materialization.metadata
    decisions = {r.data["unit"]: r.data["decision"] for r in metadata["halving"].value.records}
    assert decisions == {kept.unit: "full fit", stopped.unit: "stopped"}
    assert metadata["rung_share_of_train"].value == 0.25
    selection = instance.get_latest_materialization_event(
        dg.AssetKey("next_track_candidate_metrics")
    )
    skipped = selection.asset_materialization.metadata["candidates_skipped"].value
    assert skipped[stopped.unit] == stopped.skipped
    rung_runs = MlflowClient().search_runs(
        [mlflow.get_experiment_by_name(MODEL).experiment_id],
        f"tags.kind = 'rung' and tags.dagster_run_id = '{pipeline_run.run_id}'",
    )
    assert sorted(r.data.tags["unit"] for r in rung_runs) == [stopped.unit] + [kept.unit] * 3
    assert all(r.data.params["rung_share"] == "0.25" for r in rung_runs)


def budgeted_grid_run(minutes: float):
    """The rules grid alone, on the module's dataset, with a time budget of ``minutes``; the
    budget screens although the split is below ``min_train_rows``."""
    from orchestration.definitions import defs

    budget = {"min_train_rows": 10**9, "budget_minutes": minutes}
    result = defs.resolve_job_def("next_track_pipeline").execute_in_process(
        run_config={
            "ops": {
                "rung_references": {"config": budget},
                BUDGETED_GRID: SMALL_GRID[BUDGETED_GRID],
            }
        },
        instance=dg.DagsterInstance.get(),
        asset_selection=[dg.AssetKey("rung_references"), dg.AssetKey(BUDGETED_GRID)],
    )
    return result, {o.unit: o for o in result.output_for_node(BUDGETED_GRID)}


BUDGETED_GRID = "sequential_rules_candidates"


def test_a_budget_spent_at_the_rung_starts_no_full_fit_and_keeps_what_the_rung_found(
    pipeline_run, monkeypatch
):
    """An hour passes (a fake clock) while the grid is at its rung: by its own rung's estimate
    no full fit ends before the grid's deadline, so none starts; the unit sent on keeps its fit
    at the rung, and the grid's table, the summary and MLflow say so."""
    from orchestration.assets import grid
    from orchestration.summary import skipped_line

    offset = {"seconds": 0.0}
    real_time, decide = grid.time.time, grid.rung_verdicts

    def decide_then_an_hour_passes(*args, **kwargs):
        verdicts = decide(*args, **kwargs)
        offset["seconds"] = 3600.0
        return verdicts

    monkeypatch.setattr(grid, "rung_verdicts", decide_then_an_hour_passes)
    monkeypatch.setattr(grid, "time", SimpleNamespace(time=lambda: real_time() + offset["seconds"]))
    result, outcomes = budgeted_grid_run(minutes=60.0)
    kept = outcomes["sequential_rules__w10_keep500"]
    assert kept.skipped.startswith("time budget: its rung puts its full fit at ")
    assert "its fit at the rung stands in" in kept.skipped
    assert len(kept.results) == 3 and all("/rungs/" in r.model_key for r in kept.results)
    assert outcomes["sequential_rules__w10_keep1"].skipped.startswith("successive halving")
    assert skipped_line({u: o.skipped for u, o in outcomes.items() if o.skipped}) == (
        "  grid units not fitted in full: 2 (successive halving stopped 1 at its rung, 1 not "
        "started within the time budget, kept at their rung; why: candidates_skipped)"
    )
    full_fits = MlflowClient().search_runs(
        [mlflow.get_experiment_by_name(MODEL).experiment_id],
        f"tags.kind = 'candidate' and tags.dagster_run_id = '{result.run_id}'",
    )
    assert full_fits == []
    event = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey(BUDGETED_GRID))
    metadata = event.asset_materialization.metadata
    rows = {r.data["unit"]: r.data for r in metadata["halving"].value.records}
    assert rows[kept.unit]["decision"] == "kept at the rung"
    assert rows[kept.unit]["full fit estimate (s)"] > 0
    started = dg.DagsterInstance.get().get_run_record_by_id(result.run_id).start_time
    assert metadata["grid_deadline"].value == pytest.approx(started + 60 * 60 * (1 - 0.6))


def test_a_budget_spent_before_the_grid_screens_nothing(pipeline_run):
    from orchestration.summary import skipped_line

    _, outcomes = budgeted_grid_run(minutes=0.001)
    assert {o.skipped for o in outcomes.values()} == {
        "time budget: the grid's deadline passed before its rung could start"
    }
    assert all(o.results == [] for o in outcomes.values())
    assert skipped_line({u: o.skipped for u, o in outcomes.items()}) == (
        "  grid units not fitted in full: 2 (2 not even screened within the time budget; why: "
        "candidates_skipped)"
    )


def test_champion_is_registered_with_test_metrics_tags_and_lineage(pipeline_run):
    client = MlflowClient()
    champion = client.get_model_version_by_alias(MODEL, CHAMPION)
    selected = handover(pipeline_run.run_id, "next_track_selected_model")
    dataset = handover(pipeline_run.run_id, "next_track_dataset")
    run = client.get_run(champion.run_id)
    expected = selected["test"][selected["candidate"]]["hit_rate_at_100"]
    assert run.data.metrics["test_hit_rate_at_100"] == pytest.approx(expected)
    assert "test_baseline_sequential_rules_hit_rate_at_100" in run.data.metrics
    assert champion.tags["data_fingerprint"] == dataset["fingerprint"]
    assert champion.tags["family"] == selected["family"]
    assert champion.tags["promotion"] == "no champion yet"
    # Markdown: the underscores escaped.
    assert r"selected on validation ndcg\_at\_10 (hit\_rate\_at\_100 breaking ties)" in (
        champion.description
    )
    # test figures and the bundle come from models refit on train + validation
    assert "Test: each model refit on train + validation first." in champion.description
    summary = dataset["summary"]
    refit_playlists = summary["train_playlists"] + summary["validation_queries"]
    assert run.data.metrics["refit_playlists"] == refit_playlists
    assert run.data.tags["dagster_run_id"] == pipeline_run.run_id
    assert run.inputs.dataset_inputs[0].dataset.digest == dataset["fingerprint"]
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["kind"] == "pipeline" and parent.info.status == "FINISHED"
    children = mlflow.search_runs(
        experiment_names=[MODEL],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    assert len(children) >= 6  # candidates, baselines and the selected model, nested


def test_the_pipelines_mlflow_run_holds_its_data_selection_and_figures(pipeline_run):
    """The parent run (one per Dagster run), not only the selected model's child, carries what
    the runs table compares pipeline runs on."""
    client = MlflowClient()
    selected = handover(pipeline_run.run_id, "next_track_selected_model")
    dataset = handover(pipeline_run.run_id, "next_track_dataset")
    registered = handover(pipeline_run.run_id, "next_track_registered_model")
    parent = client.get_run(
        client.get_run(registered["mlflow_run_id"]).data.tags["mlflow.parentRunId"]
    )
    assert parent.data.params == {
        "source": dataset["source"],
        "sample_percent": "100.0",
        "split_salt": "next-track-v1",
        "selected_candidate": selected["candidate"],
        "selected_family": selected["family"],
        "selection_metric": "ndcg_at_10",
        "validation_queries": str(dataset["validation_queries"]),
    }
    metrics, candidate = parent.data.metrics, selected["candidate"]
    for split in ("validation", "test"):
        figures = selected[split]
        assert metrics[f"{split}_hit_rate_at_100"] == pytest.approx(
            figures[candidate]["hit_rate_at_100"]
        )
        rules = next(name for name in figures if name.startswith("sequential_rules:"))
        assert metrics[f"{split}_baseline_sequential_rules_hit_rate_at_100"] == pytest.approx(
            figures[rules]["hit_rate_at_100"]
        )
        assert f"{split}_baseline_popularity_mrr_at_100" in metrics
    assert parent.data.tags["model_version"] == registered["version"]
    assert parent.data.tags["alias"] == registered["alias"]
    model = client.get_registered_model(MODEL)
    assert model.tags["use_case"] == "next_track"
    assert model.tags["promoted_on"] == "test_hit_rate_at_100"
    assert "@previous-champion" in model.description


def test_test_figures_by_query_length_and_popularity_bias_are_reported(pipeline_run):
    """The selected model and both baselines by query length (a table in Dagster and MLflow, a
    plot), and warm hit rate, coverage and POP@10 beside each candidate's accuracy."""
    selected = handover(pipeline_run.run_id, "next_track_selected_model")
    event = dg.DagsterInstance.get().get_latest_materialization_event(
        dg.AssetKey("next_track_selected_model")
    )
    metadata = event.asset_materialization.metadata
    rows = [r.data for r in metadata["test_by_query_length"].value.records]
    assert {r["model"] for r in rows} == set(selected["test"])
    for model, figures in selected["test"].items():
        buckets = [r for r in rows if r["model"] == model]
        assert {r["query_length"] for r in buckets} <= {"1-2", "3-5", "6-10", "11+"}
        assert sum(r["queries"] for r in buckets) == figures["queries"]
        hits = sum(r["hit_rate_at_10"] * r["queries"] for r in buckets)
        # The table shows four significant digits.
        assert hits / figures["queries"] == pytest.approx(figures["hit_rate_at_10"], abs=1e-3)
        assert 0 < figures["warm_hit_rate_at_10"] <= 1 and figures["mean_popularity_at_10"] > 0
    registered = handover(pipeline_run.run_id, "next_track_registered_model")
    client = MlflowClient()
    parent = client.get_run(registered["mlflow_run_id"]).data.tags["mlflow.parentRunId"]
    logged = {a.path for a in client.list_artifacts(parent)}
    logged |= {a.path for a in client.list_artifacts(parent, "plots")}
    assert {"test_by_query_length.json", "plots/test_by_query_length.png"} <= logged
    selection = handover(pipeline_run.run_id, "next_track_candidate_metrics")
    popularity = next(r for r in selection["rows"] if r["family"] == "popularity")
    chosen = next(r for r in selection["rows"] if r["role"] == "selected")
    assert popularity["mean_popularity_at_10"] > chosen["mean_popularity_at_10"]
    assert popularity["coverage_at_10"] < chosen["coverage_at_10"]


def test_loaded_champion_recommends_unheard_tracks_with_names(pipeline_run):
    from orchestration.settings import WAREHOUSE_PATH

    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@{CHAMPION}")
    query = read_table_rows(WAREHOUSE_PATH, "playlist_splits")
    query = next(r["query"] for r in query if r["split"] == "test")
    tracks = read_table_rows(WAREHOUSE_PATH, "dim_tracks")
    names = {t["track_key"]: (t["artist"], t["title"]) for t in tracks}
    typed = [f"{names[k][0]} - {names[k][1]}".upper() for k in query]  # as a user types them
    by_key = model.predict(pd.DataFrame({"tracks": [query]}), params={"k": 25})
    by_name = model.predict(pd.DataFrame({"tracks": [typed]}), params={"k": 25})
    assert len(by_key) == 25 and by_key["rank"].tolist() == list(range(1, 26))
    assert not set(by_key["track_key"]) & set(query)
    assert by_key.equals(by_name)
    assert all(names[k] == (a, t) for k, a, t in by_key[["track_key", "artist", "title"]].values)


def test_a_model_that_does_not_beat_sequential_rules_is_never_registered(pipeline_run):
    """The tutorial's setup alone loses to the last-track rule on this data: the blocking check
    stops registration and says why."""
    client = MlflowClient()
    versions_before = len(client.search_model_versions(f"name='{MODEL}'"))
    tutorial = [
        {
            "family": "word2vec",
            "params": {"epochs": 15},
            "variants": [
                {"last_n": 1, "skip_unknown": False, "unknown": "random", "exclude_heard": False}
            ],
        }
    ]
    result = run_job({**SYNTHETIC, **grid(tutorial, [], second_stage=False)}, raise_on_error=False)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    gate = checks["beats_baselines"]
    assert gate.passed is False
    assert "FAILS " in gate.description
    assert "hit_rate_at_100 against `sequential_rules:w10_last1_strict`" in gate.description
    assert "(validation queries: " in gate.description and "±" in gate.description
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert (
        "next_track_candidate_metrics" in materialized
        and "next_track_registered_model" not in materialized
    )
    assert len(client.search_model_versions(f"name='{MODEL}'")) == versions_before


def test_a_retrain_that_does_not_beat_the_champion_becomes_challenger(pipeline_run):
    """The same data and grid again: training is reproducible, so the new version ties the
    champion on the same test split, and a tie does not replace it."""
    from orchestration.settings import SERVING_DIR

    client = MlflowClient()
    champion_before = client.get_model_version_by_alias(MODEL, CHAMPION)
    table = SERVING_DIR / "track_recommendations.duckdb"
    written = table.stat().st_mtime_ns
    result = run_job({**SYNTHETIC, **SMALL_GRID})
    challenger = client.get_model_version_by_alias(MODEL, CHALLENGER)
    assert client.get_model_version_by_alias(MODEL, CHAMPION).version == champion_before.version
    # The champion's serving table depends on nothing the run changed: kept, not scored again.
    (materialized,) = result.asset_materializations_for_node("track_recommendations")
    assert "kept_from_run" in materialized.metadata
    assert materialized.metadata["champion_version"].value == str(champion_before.version)
    assert table.stat().st_mtime_ns == written
    assert int(challenger.version) > int(champion_before.version)
    assert challenger.tags["promotion"].startswith("does not beat champion")
    registered = handover(result.run_id, "next_track_registered_model")
    assert registered["alias"] == CHALLENGER
    # Same data, same split: the champion re-scored through its MLflow pyfunc gives exactly the
    # figure the pipeline logged for it.
    event = dg.DagsterInstance.get().get_latest_materialization_event(
        dg.AssetKey("next_track_registered_model")
    )
    rescored = event.asset_materialization.metadata[
        "champion_before_test_hit_rate_at_100_on_this_split"
    ].value
    logged = client.get_run(champion_before.run_id).data.metrics["test_hit_rate_at_100"]
    assert rescored == display_number(logged)  # rounded for the UI


def test_the_serving_table_is_scored_again_when_its_k_changes(pipeline_run, monkeypatch):
    """The same champion with another k is another table: built, not kept; built again when k
    changes back (the later tests read the table at k 10), then kept; built again when the
    published file is not the one its materialization recorded, and when the code that scores
    it changed."""
    import duckdb

    from orchestration.assets.next_track import serving
    from orchestration.assets.next_track.serving import track_recommendations
    from orchestration.definitions import defs
    from orchestration.settings import SERVING_DIR

    def tabled_at(k: int) -> dg.AssetMaterialization:
        result = dg.materialize(
            [track_recommendations],
            instance=dg.DagsterInstance.get(),
            resources=defs.resources,
            run_config={
                "ops": {"track_recommendations": {"config": {"k": k, "max_tracks": TABLED_TRACKS}}}
            },
        )
        (materialized,) = result.asset_materializations_for_node("track_recommendations")
        return materialized

    def rows_and_tracks() -> tuple[int, int]:
        path = SERVING_DIR / "track_recommendations.duckdb"
        with duckdb.connect(str(path), read_only=True) as connection:
            return connection.execute(
                "select count(*), count(distinct track_key) from track_recommendations"
            ).fetchone()

    try:
        assert "kept_from_run" not in tabled_at(5).metadata
        assert rows_and_tracks() == (5 * TABLED_TRACKS, TABLED_TRACKS)
    finally:
        assert "kept_from_run" not in tabled_at(10).metadata
    assert rows_and_tracks() == (10 * TABLED_TRACKS, TABLED_TRACKS)
    kept = tabled_at(10).metadata
    assert "kept_from_run" in kept and "build_seconds" not in kept
    # A published file that is not the one the materialization recorded is built again.
    with duckdb.connect(str(SERVING_DIR / "track_recommendations.duckdb")) as connection:
        connection.execute("delete from track_recommendations where rank = 10")
    assert "kept_from_run" not in tabled_at(10).metadata
    assert rows_and_tracks() == (10 * TABLED_TRACKS, TABLED_TRACKS)
    # Another hash of the ml package's sources: a scoring fix must not keep the old table.
    monkeypatch.setattr(serving, "code_fingerprint", lambda: "another version of ml")
    rebuilt = tabled_at(10).metadata
    assert "kept_from_run" not in rebuilt and "build_seconds" in rebuilt
    assert rebuilt["scoring_code"].value == "another version of ml"
    assert "kept_from_run" in tabled_at(10).metadata


def test_served_model_answers_like_the_loaded_one(pipeline_run, tmp_path):
    from orchestration.settings import WAREHOUSE_PATH

    port = free_port()
    rows = read_table_rows(WAREHOUSE_PATH, "playlist_splits")
    queries = [r["query"] for r in rows if r["split"] == "validation"][:3]
    loaded = mlflow.pyfunc.load_model(f"models:/{MODEL}@{CHAMPION}")
    expected = loaded.predict(pd.DataFrame({"tracks": queries}), params={"k": 5})
    command = [
        shutil.which("mlflow"), "models", "serve", "-m", f"models:/{MODEL}@{CHAMPION}",
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


def test_bad_source_fails_before_dbt_and_keeps_the_published_data(pipeline_run, tmp_path):
    from orchestration.settings import RAW_EVENTS_PATH

    before = pq.read_table(RAW_EVENTS_PATH)
    bad = tmp_path / "spotify_dataset.csv"
    bad.write_text("not,the,right,header\n")
    result = run_job({"raw_playlist_events": {"config": {"source": str(bad)}}}, False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "raw_playlist_events"
    assert str(bad) in failure.event_specific_data.error.message
    assert "next_track_dbt_models" not in {
        e.step_key for e in result.all_events if e.is_step_success
    }
    assert pq.read_table(RAW_EVENTS_PATH).equals(before)


def test_track_recommendations_table_matches_the_champion(pipeline_run):
    import duckdb

    from orchestration.settings import SERVING_DIR

    path = SERVING_DIR / "track_recommendations.duckdb"
    with duckdb.connect(str(path), read_only=True) as connection:
        tracks, rows = connection.execute(
            "select count(distinct track_key), count(*) from track_recommendations"
        ).fetchone()
        key = connection.execute("select min(track_key) from track_recommendations").fetchone()[0]
        stored = connection.execute(
            "select next_track_key from track_recommendations where track_key = ? order by rank",
            [key],
        ).fetchall()
    assert rows == 10 * tracks and tracks == TABLED_TRACKS
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@{CHAMPION}")
    catalogue = model.unwrap_python_model().bundle.catalogue
    plays = dict(zip(catalogue.key_list(), catalogue.train_counts.tolist(), strict=True))
    with duckdb.connect(str(path), read_only=True) as connection:
        tabled = {
            r[0]
            for r in connection.execute("select track_key from track_recommendations").fetchall()
        }
    fewest_tabled = min(plays[t] for t in tabled)
    assert all(count <= fewest_tabled for key, count in plays.items() if key not in tabled)
    event = dg.DagsterInstance.get().get_latest_materialization_event(
        dg.AssetKey("track_recommendations")
    )
    metadata = event.asset_materialization.metadata
    assert metadata["catalogue_tracks"].value == len(plays) > TABLED_TRACKS
    tabled_share = sum(plays[t] for t in tabled) / sum(plays.values())
    assert metadata["share_of_train_plays"].value == display_number(tabled_share)
    served = model.predict(pd.DataFrame({"tracks": [[key]]}), params={"k": 10})
    assert [r[0] for r in stored] == served["track_key"].tolist()
    checks = {e.check_name: e.passed for e in pipeline_run.get_asset_check_evaluations()}
    assert checks["track_recommendations_dbt_tests"] is True
    champion = MlflowClient().get_model_version_by_alias(MODEL, CHAMPION)
    with duckdb.connect(str(path), read_only=True) as connection:
        built_from = connection.execute(
            "select distinct model_name, model_version, data_fingerprint from track_recommendations"
        ).fetchall()
    assert built_from == [(MODEL, str(champion.version), champion.tags["data_fingerprint"])]


def test_a_sql_only_dbt_build_leaves_the_runs_own_warehouse_as_the_run_wrote_it(pipeline_run):
    """The README's `dbt build` alone rewrites the published warehouse, never the file the run
    built and read (published as a copy, not a second name of the same file)."""
    import subprocess
    import sys

    from orchestration.settings import DBT_PROFILES_DIR, DBT_PROJECT_DIR, RUNS_DIR, WAREHOUSE_PATH

    built = RUNS_DIR / pipeline_run.run_id / "warehouse.duckdb"
    before = read_table_rows(built, "next_track_build")[0]
    assert before["build_id"] == pipeline_run.run_id
    dbt = Path(sys.executable).parent / "dbt"
    subprocess.run(
        [str(dbt), "build", "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(DBT_PROFILES_DIR), "--select", "next_track_build"],
        check=True, capture_output=True,
        env={k: v for k, v in os.environ.items() if k != "NEXT_TRACK_WAREHOUSE"},
    )  # fmt: skip
    assert read_table_rows(WAREHOUSE_PATH, "next_track_build")[0]["build_id"] == "manual"
    assert read_table_rows(built, "next_track_build")[0] == before


def test_selection_and_registration_each_run_alone_on_the_runs_hand_overs(pipeline_run, tmp_path):
    """Each stage materialized alone on the hand-overs the run wrote, into a fresh MLflow store:
    the selection ranks the same candidates and chooses as the run did, and registration makes
    the first version champion with the baselines' test figures beside its own."""
    from orchestration.assets.grid import UnitOutcome
    from orchestration.assets.next_track.dataset import DatasetHandle
    from orchestration.assets.next_track.registry import next_track_registered_model
    from orchestration.assets.next_track.selection import next_track_candidate_metrics
    from orchestration.assets.selection import SelectedModel, Selection
    from orchestration.settings import RUNS_DIR
    from tests.alone import fresh_resources, handovers, register_alone, run_alone

    grid = [
        "track_embeddings",
        "sequential_rules_candidates",
        "neighbourhood_candidates",
        "slist_candidates",
        "next_track_baseline_candidates",
    ]
    run = handovers(
        RUNS_DIR / pipeline_run.run_id,
        {
            "next_track_dataset": DatasetHandle,
            **{name: list[UnitOutcome] for name in grid},
            "next_track_candidate_metrics": Selection,
            "next_track_selected_model": SelectedModel,
        },
    )
    resources = fresh_resources(tmp_path)
    inputs = {n: run[n] for n in ["next_track_dataset", *grid]}
    selection = run_alone(next_track_candidate_metrics, inputs, resources)
    before = run["next_track_candidate_metrics"]
    assert selection.selected.name == before.selected.name
    assert [r["candidate"] for r in selection.rows] == [r["candidate"] for r in before.rows]

    version = register_alone(next_track_registered_model, "next_track", run, selection, resources)
    selected = run["next_track_selected_model"]
    assert version.tags["raw_fingerprint"] == run["next_track_dataset"].raw_fingerprint
    for name, figures in selected.test.items():
        if name != selected.candidate:
            tag = f"test_baseline_{name.split(':')[0]}_hit_rate_at_100"
            assert float(version.tags[tag]) == pytest.approx(figures["hit_rate_at_100"], abs=1e-6)


def test_one_grid_unit_runs_alone_and_scores_as_in_the_run(pipeline_run, tmp_path):
    """The sequential-rules grid materialized alone with one of the run's units, on the run's
    dataset and rung: the same variants with the same validation figures."""
    from orchestration.assets.grid import RungHandle, UnitOutcome
    from orchestration.assets.next_track.candidates import sequential_rules_candidates
    from orchestration.assets.next_track.dataset import DatasetHandle
    from orchestration.settings import RUNS_DIR
    from tests.alone import fresh_resources, handovers, run_alone

    run = handovers(
        RUNS_DIR / pipeline_run.run_id,
        {
            "next_track_dataset": DatasetHandle,
            "rung_references": RungHandle,
            "sequential_rules_candidates": list[UnitOutcome],
        },
    )
    unit = SMALL_GRID["sequential_rules_candidates"]["config"]["candidates"][0]
    inputs = {k: run[k] for k in ("next_track_dataset", "rung_references")}
    resources = fresh_resources(tmp_path)
    (alone,) = run_alone(sequential_rules_candidates, inputs, resources, {"candidates": [unit]})
    (before,) = [o for o in run["sequential_rules_candidates"] if o.unit == alone.unit]
    assert alone.skipped is None and len(alone.results) == len(unit["variants"])
    assert {r.name: r.metrics for r in alone.results} == {r.name: r.metrics for r in before.results}


@pytest.mark.parametrize("screening", [False, True], ids=["unscreened", "screened"])
def test_a_unit_refused_at_this_size_gets_no_step_and_is_reported_skipped(pipeline_run, screening):
    """A rules unit capped at one train row: the plan refuses it, so no step fits it (none to
    spawn at full scale for a unit that would only say so), and the grid's outcome, its
    metadata and the summary's line still say why; the other units fit as before, with the
    grid's rung (successive halving stops the one-successor unit there) or without it. Last in
    the module: its runs count towards the run folders kept (``KEEP_RUNS``), and the tests above
    read the module's run's folder."""
    from orchestration.definitions import defs
    from orchestration.summary import skipped_line

    grid = SMALL_GRID[BUDGETED_GRID]["config"]["candidates"]
    capped = {"family": "sequential_rules", "params": {"max_distance": 20}, "max_train_rows": 1}
    config = {"candidates": [*grid, capped]}
    result = defs.resolve_job_def("next_track_pipeline").execute_in_process(
        run_config={
            "ops": {
                "rung_references": {"config": {"min_train_rows": 0 if screening else 10**9}},
                BUDGETED_GRID: {"config": config},
            }
        },
        instance=dg.DagsterInstance.get(),
        asset_selection=[dg.AssetKey("rung_references"), dg.AssetKey(BUDGETED_GRID)],
    )
    outcomes = {o.unit: o for o in result.output_for_node(BUDGETED_GRID)}
    refused = outcomes["sequential_rules__w20_keep500"]
    assert " train rows > max_train_rows 1: this unit costs too much" in refused.skipped
    steps = {e.step_key for e in result.all_events if e.step_key}
    assert not [key for key in steps if "w20" in key]
    assert any("__fit[sequential_rules__w10_keep500]" in key for key in steps)
    assert any("__screen[sequential_rules__w10_keep1]" in key for key in steps) == screening
    assert outcomes["sequential_rules__w10_keep500"].results
    event = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey(BUDGETED_GRID))
    skipped = event.asset_materialization.metadata["skipped"].value
    stopped = {"sequential_rules__w10_keep1": outcomes["sequential_rules__w10_keep1"].skipped}
    assert skipped == {refused.unit: refused.skipped} | (stopped if screening else {})
    assert skipped_line(skipped) == (
        "  grid units not fitted in full: "
        + ("2 (successive halving stopped 1 at its rung, " if screening else "1 (")
        + "1 skipped at this size; why: candidates_skipped)"
    )
