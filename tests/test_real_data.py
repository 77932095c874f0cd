"""`make run SOURCE=...` on the real Yes.com playlists: the model must beat popularity."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_pipeline_on_yes_small_beats_popularity(shared_data, tmp_path):
    data_dir = tmp_path / "data"
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "NEXT_TRACK_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data_dir}/mlflow/mlflow.db",
    }
    result = subprocess.run(
        [sys.executable, "-m", "orchestration.run", "--source", str(shared_data / "yes_small")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "rows in                        175,911" in result.stdout
    assert "registered next-track version 1 as @champion" in result.stdout
    selected = json.loads((data_dir / "models" / "selected_model.json").read_text())
    model = selected["test"][selected["candidate"]]["hit_rate_at_100"]
    popular = selected["test"]["most_popular"]["hit_rate_at_100"]
    assert model > popular, (selected["candidate"], model, popular)
