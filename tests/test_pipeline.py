"""The whole asset graph materialized in-process on a small synthetic run."""

import dagster as dg
import pyarrow.parquet as pq
import pytest

from ml.warehouse import read_table_rows


@pytest.fixture(scope="module")
def pipeline_run(prepared_dbt_project):
    from orchestration.definitions import defs

    job = defs.resolve_job_def("full_pipeline")
    run_config = {
        "ops": {
            "raw_playlist_events": {"config": {"synthetic_playlists": 400, "synthetic_seed": 3}},
        }
    }
    instance = dg.DagsterInstance.get()
    result = job.execute_in_process(run_config=run_config, instance=instance)
    assert result.success
    return result, instance


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
    assert stats["playlists"] + stats["playlists_too_short"] == stats["playlists_clean"] == 400
    splits = {r["split"] for r in read_table_rows(WAREHOUSE_PATH, "playlist_splits")}
    assert splits == {"train", "validation", "test"}

    raw = instance.get_latest_materialization_event(dg.AssetKey("raw_playlist_events"))
    assert raw.asset_materialization.metadata["dagster/row_count"].value == raw_rows
    tracks = instance.get_latest_materialization_event(dg.AssetKey("dim_tracks"))
    assert tracks.asset_materialization.metadata["dagster/row_count"].value == stats["tracks_clean"]


def test_dbt_tests_ran_as_passing_asset_checks(pipeline_run):
    result, _ = pipeline_run
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) >= 30
    assert all(e.passed for e in evaluations), [e.check_name for e in evaluations if not e.passed]
    checked = {e.asset_key.to_user_string() for e in evaluations}
    assert {"stg_playlist_events", "playlist_splits", "dim_tracks", "dataset_stats"} <= checked


def test_bad_source_fails_before_dbt_and_keeps_previous_data(pipeline_run, tmp_path):
    from orchestration.definitions import defs
    from orchestration.settings import RAW_EVENTS_PATH

    before = pq.read_table(RAW_EVENTS_PATH)
    bad = tmp_path / "spotify_dataset.csv"
    bad.write_text("not,the,right,header\n")
    result = defs.resolve_job_def("full_pipeline").execute_in_process(
        run_config={"ops": {"raw_playlist_events": {"config": {"source": str(bad)}}}},
        instance=dg.DagsterInstance.get(),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "raw_playlist_events"
    assert str(bad) in failure.event_specific_data.error.message
    assert "dbt_models" not in {e.step_key for e in result.all_events if e.is_step_success}
    assert pq.read_table(RAW_EVENTS_PATH).equals(before)
