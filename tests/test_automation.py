"""Schedule, sensor and run-config validation, evaluated with Dagster's test utilities."""

import json
import os
import time

import dagster as dg
import pytest

from orchestration.config import run_config_errors
from orchestration.run import main as run_main


@pytest.fixture
def inbox(prepared_dbt_project, tmp_path, monkeypatch):
    import orchestration.sensors as sensors

    monkeypatch.setattr(sensors, "INBOX_DIR", tmp_path / "inbox")
    monkeypatch.setattr(sensors, "INBOX_SETTLE_SECONDS", 5.0)
    return tmp_path / "inbox"


def evaluate(cursor: str | None = None):
    from orchestration.sensors import inbox_sensor
    from orchestration.storage import RunStorage

    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"storage": RunStorage()}
        )
        result = inbox_sensor.evaluate_tick(context)
    return result.run_requests or [], result.cursor, result.skip_message


def age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_inbox_sensor_ingests_each_file_version_once(inbox, shared_data):
    requests, cursor, skip = evaluate()
    assert requests == [] and "nothing new" in skip and inbox.is_dir()

    playlist = inbox / "mpd.slice.0-999.json"
    playlist.write_bytes((shared_data / "mpd_sample" / "mpd.slice.0-999.json").read_bytes())
    requests, cursor, _ = evaluate(cursor)
    assert requests == []  # just written: may still be growing

    age(playlist, 60)
    requests, cursor, _ = evaluate(cursor)
    assert len(requests) == 1
    config = requests[0].run_config["ops"]["raw_playlist_events"]["config"]
    assert config == {"source": str(playlist)}
    assert requests[0].job_name is None or requests[0].job_name == "next_track_pipeline"

    again, cursor, _ = evaluate(cursor)
    assert again == []  # the same version is never requested twice

    with playlist.open("a") as f:
        f.write("\n")
    age(playlist, 60)
    changed, cursor, _ = evaluate(cursor)
    assert len(changed) == 1 and changed[0].run_key != requests[0].run_key
    assert set(json.loads(cursor)) == {"mpd.slice.0-999.json"}


def test_inbox_sensor_ignores_partial_and_hidden_files(inbox):
    inbox.mkdir()
    for name in ("export.csv.part", ".hidden.csv", "download.crdownload"):
        (inbox / name).write_text("user_id,artistname,trackname,playlistname\n")
        age(inbox / name, 60)
    (inbox / "empty.csv").touch()
    age(inbox / "empty.csv", 60)
    requests, _, _ = evaluate()
    assert requests == []


def test_weekly_schedule_is_off_by_default_and_runs_the_whole_graph(prepared_dbt_project):
    from orchestration.definitions import defs

    schedule = defs.get_schedule_def("weekly_next_track")

    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.cron_schedule == "0 4 * * 1"
    context = dg.build_schedule_context(scheduled_execution_time=None)
    run_request = schedule.evaluate_tick(context).run_requests[0]
    job = defs.resolve_job_def(schedule.job_name)
    selected = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert {
        "raw_playlist_events",
        "playlist_splits",
        "track_embeddings",
        "next_track_registered_model",
    } <= (selected)
    assert run_request.run_config == {}


def test_defaults_are_valid_and_bad_values_are_named():
    assert run_config_errors({}) == []
    errors = run_config_errors(
        {
            "ops": {
                "raw_playlist_events": {"config": {"source": "/no/such/file.csv"}},
                "next_track_dbt_models": {"config": {"sample_percent": 0}},
                "track_embeddings": {
                    "config": {"candidates": [{"family": "word2vec", "params": {"epochs": 0}}]}
                },
                "sequential_rules_candidates": {
                    "config": {
                        "candidates": [
                            {"family": "sequential_rules", "variants": [{"recency_decay": -1}]},
                            {"family": "psychic"},
                        ]
                    }
                },
                "next_track_candidate_metrics": {"config": {"metric": "hit_rate_at_7"}},
            }
        }
    )
    joined = "\n".join(errors)
    assert "raw_playlist_events.source: Value error, source '/no/such/file.csv'" in joined
    assert "next_track_dbt_models.sample_percent" in joined
    assert "track_embeddings.candidates.0.word2vec.epochs" in joined
    assert "sequential_rules_candidates.candidates.0.sequential_rules.recency_decay" in joined
    assert (
        "sequential_rules_candidates.candidates.1: unknown recommender family 'psychic'" in joined
    )
    assert "next_track_candidate_metrics.metric" in joined


def test_invalid_config_is_rejected_before_any_step(prepared_dbt_project, capsys):
    from orchestration.definitions import defs

    assert run_main(["--sample-percent", "150"]) == 2
    assert "next_track_dbt_models.sample_percent" in capsys.readouterr().err
    # Launched another way (UI, sensor), the first step refuses the run before it ingests.
    bad_grid = {"candidates": [{"family": "sequential_rules", "params": {"max_distance": 0}}]}
    result = defs.resolve_job_def("next_track_pipeline").execute_in_process(
        run_config={"ops": {"sequential_rules_candidates": {"config": bad_grid}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "raw_playlist_events"
    message = failure.event_specific_data.error.message
    assert "sequential_rules_candidates.candidates.0.sequential_rules.max_distance" in message


def test_a_run_config_naming_a_renamed_asset_says_its_new_name():
    from orchestration.config import run_config_errors

    config = {"ops": {"candidate_metrics": {"config": {"reranker": False}}}}
    assert run_config_errors(config) == ["candidate_metrics: renamed next_track_candidate_metrics"]
    renamed = {"ops": {"next_track_candidate_metrics": {"config": {"reranker": False}}}}
    assert run_config_errors(renamed) == []
