"""Test session set-up: every location the code writes to points into one temporary folder.

These variables are read at import by orchestration.settings, so they are set before any
project module is imported.
"""

import os
import sys
import tempfile
from pathlib import Path

import pytest

SESSION_DIR = Path(tempfile.mkdtemp(prefix="next-track-tests-"))
os.environ["NEXT_TRACK_DATA_DIR"] = str(SESSION_DIR / "data")
os.environ["DAGSTER_HOME"] = str(SESSION_DIR / "dagster_home")
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{SESSION_DIR}/data/mlflow/mlflow.db"
# dagster-dbt runs the `dbt` executable: the one installed beside this interpreter.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
(SESSION_DIR / "dagster_home").mkdir(parents=True)
(SESSION_DIR / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real test data not found at {SHARED_DATA} (see DESIGN.md)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def prepared_dbt_project():
    from orchestration.project import dbt_project

    dbt_project.preparer.prepare(dbt_project)
    return dbt_project
