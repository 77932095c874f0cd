"""`make run SOURCE=...` on the real Yes.com playlists: the registered champion beats both
baselines (most popular, sequential rules on the last track) on validation and on test."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_champion_on_yes_small_beats_both_baselines(shared_data, tmp_path):
    data_dir = tmp_path / "data"
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "NEXT_TRACK_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data_dir}/mlflow/mlflow.db",
    }
    grid = REPO_ROOT / "tests" / "one_unit_per_family.yaml"  # CI time
    result = subprocess.run(
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
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert re.search(r"^rows in +175,911$", result.stdout, re.MULTILINE), result.stdout
    assert "registered next-track version 1 as @champion" in result.stdout
    runs = data_dir / "runs"
    (run,) = [p for p in runs.iterdir() if (p / "handover" / "selected_model.json").exists()]
    selection = json.loads((run / "handover" / "candidate_metrics.json").read_text())
    selected = json.loads((run / "handover" / "selected_model.json").read_text())
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
