"""`make run SOURCE=...` on the real Yes.com playlists, as a user runs and reads it: the registered
champion beats both baselines (most popular, sequential rules on the last track) on validation
and on test; progress goes to stderr (a line per step start and end, the steps' own messages), a
short summary to stdout, no dbt node lines, no library warnings."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_SUMMARY_LINES = 45


@pytest.fixture(scope="module")
def make_run(shared_data, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("yes_small_run")
    data_dir, home = root / "data", root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "NEXT_TRACK_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data_dir}/mlflow/mlflow.db",
    }
    grid = REPO_ROOT / "tests" / "one_unit_per_family.yaml"  # CI time
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestration.run",
            "--source",
            str(shared_data / "yes_small"),
            "--config",
            str(grid),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    (root / "stdout.txt").write_text(done.stdout)
    (root / "stderr.txt").write_text(done.stderr)
    report = f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-6000:]}"
    assert done.returncode == 0, report
    return {"stdout": done.stdout, "stderr": done.stderr, "data": data_dir, "report": report}


def test_champion_on_yes_small_beats_both_baselines(make_run):
    stdout = make_run["stdout"]
    assert re.search(r"^rows in +175,911$", stdout, re.MULTILINE), stdout
    assert "registered next-track version 1 as @champion" in stdout
    runs = make_run["data"] / "runs"
    (run,) = [
        p for p in runs.iterdir() if (p / "handover" / "next_track_selected_model.json").exists()
    ]
    selection = json.loads((run / "handover" / "next_track_candidate_metrics.json").read_text())
    selected = json.loads((run / "handover" / "next_track_selected_model.json").read_text())
    name = selected["candidate"]
    for baseline in selection["baselines"]:
        # validation: the whole split, as the gate sees it; test: scored once
        mine, theirs = selection["selected"]["metrics"], baseline["metrics"]
        assert mine["hit_rate_at_100"] > theirs["hit_rate_at_100"]
        test = selected["test"]
        assert test[name]["hit_rate_at_100"] > test[baseline["name"]]["hit_rate_at_100"], (
            name,
            baseline["name"],
        )


def test_make_run_prints_progress_and_a_short_summary(make_run):
    stdout, stderr, report = make_run["stdout"], make_run["stderr"], make_run["report"]
    assert len(stdout.splitlines()) <= MAX_SUMMARY_LINES, report
    assert "== validation" in stdout and "== test split" in stdout
    progress = stderr.splitlines()
    assert any(line.endswith(" start  raw_playlist_events") for line in progress), report
    assert any(" done   track_embeddings/fit[word2vec__" in line for line in progress), report
    assert any("done   next_track_registered_model in" in line for line in progress), report
    assert any("epoch" in line and "left" in line for line in progress), report  # training
    assert "Warning" not in stderr, report  # UserWarning, FutureWarning, ...: fixed
    noises = ["START sql", "STEP_WORKER_STARTED", "Downloading artifacts", "DEBUG"]
    # dagster-dbt's notes (Dagster's logger): in the run's event log, not on the console
    noises += ["A dbt subsetted execution is not being performed", "partial_parse.msgpack"]
    for noise in noises:
        assert noise not in stdout + stderr, noise
    assert "Successfully registered model" not in stdout + stderr, report  # MLflow's own print


def test_make_run_names_its_source(make_run, shared_data):
    first = make_run["stdout"].splitlines()[0]
    assert first == f"running next_track_pipeline (source: {(shared_data / 'yes_small').resolve()})"
