"""`make run` as a user reads it: progress on stderr (a line per step start and end, the steps'
own messages), a short summary on stdout, no dbt node lines, no library warnings."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_SUMMARY_LINES = 45


@pytest.mark.slow
def test_make_run_prints_progress_and_a_short_summary(tmp_path):
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "NEXT_TRACK_DATA_DIR": str(data),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data}/mlflow/mlflow.db",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestration.run",
            "--playlists",
            "600",
            "--config",
            str(REPO_ROOT / "tests" / "one_unit_per_family.yaml"),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    (tmp_path / "stdout.txt").write_text(done.stdout)
    (tmp_path / "stderr.txt").write_text(done.stderr)
    report = f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-6000:]}"
    assert done.returncode == 0, report
    summary = done.stdout.splitlines()
    assert len(summary) <= MAX_SUMMARY_LINES, report
    assert "== validation" in done.stdout and "== test split" in done.stdout
    assert "registered next-track version 1 as @champion" in done.stdout
    progress = done.stderr.splitlines()
    assert any(line.endswith(" start  raw_playlist_events") for line in progress), report
    assert any(" done   track_embeddings/fit[word2vec__" in line for line in progress), report
    assert any("done   registered_model in" in line for line in progress), report
    assert any("epoch" in line and "left" in line for line in progress), report  # training
    assert "Warning" not in done.stderr, report  # UserWarning, FutureWarning, ...: fixed
    for noise in ("START sql", "STEP_WORKER_STARTED", "Downloading artifacts", "DEBUG"):
        assert noise not in done.stdout + done.stderr, noise
