"""Where things live. One env var per location, each with a default inside the repository.

``NEXT_TRACK_DATA_DIR`` is the setting dbt's profiles.yml reads too; it is exported here as an
absolute path so dbt subprocesses started by Dagster find the same DuckDB file wherever Dagster
was launched from.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("NEXT_TRACK_DATA_DIR", REPO_ROOT / "data")).resolve()
os.environ["NEXT_TRACK_DATA_DIR"] = str(DATA_DIR)

# The published warehouse and raw file: what plain `dbt build`, notebooks and serving read.
WAREHOUSE_PATH = DATA_DIR / "warehouse.duckdb"
USER_ITEMS_WAREHOUSE_PATH = DATA_DIR / "warehouse_user_items.duckdb"
RAW_DIR = DATA_DIR / "raw"
RAW_EVENTS_PATH = RAW_DIR / "playlist_events.parquet"
# Precomputed recommendation tables, one DuckDB file each (see ml/serving/batch.py).
SERVING_DIR = DATA_DIR / "serving"
# Every run's own files (raw file, warehouse build, dataset, models, bundle), pruned by age.
RUNS_DIR = DATA_DIR / "runs"
KEEP_RUNS = int(os.environ.get("NEXT_TRACK_KEEP_RUNS", "5"))
# A step does not start writing into the data folder with less free space than this (MB).
MIN_FREE_MB = int(os.environ.get("NEXT_TRACK_MIN_FREE_MB", "256"))
INBOX_DIR = Path(os.environ.get("NEXT_TRACK_INBOX", DATA_DIR / "inbox")).resolve()

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DBT_PROFILES_DIR = REPO_ROOT / "profiles"
DBT_TARGET = os.environ.get("NEXT_TRACK_DBT_TARGET", "dev")
# The dbt installed beside this Python (the project's venv), so no step depends on PATH.
_BESIDE_PYTHON = Path(sys.executable).parent / "dbt"
DBT_EXECUTABLE = str(_BESIDE_PYTHON) if _BESIDE_PYTHON.exists() else "dbt"

# Every step that opens a DuckDB file for writing (dbt, the serving tables) runs in this pool,
# limited to 1 in the instance's dagster.yaml: DuckDB allows one writer per file.
WAREHOUSE_POOL = "duckdb_warehouse"
# Registrations run one at a time, so two runs never race on the champion alias.
REGISTRY_POOL = "model_registry"
# Steps run at once by the multi-process executor (the candidate grid fans out to this many).
MAX_PARALLEL_STEPS = int(os.environ.get("NEXT_TRACK_MAX_PARALLEL_STEPS", "2"))

MLFLOW_DIR = DATA_DIR / "mlflow"
MLFLOW_TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{MLFLOW_DIR}/mlflow.db")
MLFLOW_ARTIFACT_LOCATION = os.environ.get(
    "NEXT_TRACK_MLFLOW_ARTIFACTS", (MLFLOW_DIR / "artifacts").as_uri()
)
# The UIs links point at: the ones `make mlflow-ui` and `make ui` start (the Makefile derives
# both from MLFLOW_PORT and PORT); set them to reach servers elsewhere.
MLFLOW_UI_URL = os.environ.get("NEXT_TRACK_MLFLOW_UI", "http://127.0.0.1:5000")
DAGSTER_UI_URL = os.environ.get("NEXT_TRACK_DAGSTER_UI", "http://127.0.0.1:3000")

# What the raw asset ingests when its run config names no source (the weekly schedule, a UI
# launch with defaults): a file or folder, or unset for the synthetic generator.
DEFAULT_SOURCE = os.environ.get("NEXT_TRACK_SOURCE") or None
# A file in the inbox is picked up once it has not changed for this long (half-written files wait).
INBOX_SETTLE_SECONDS = float(os.environ.get("NEXT_TRACK_INBOX_SETTLE_SECONDS", "10"))
