"""Where things live. One env var per location, each with a default inside the repository.

``NEXT_TRACK_DATA_DIR`` is the setting dbt's profiles.yml reads too; it is exported here as an
absolute path so dbt subprocesses started by Dagster find the same DuckDB file wherever Dagster
was launched from.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("NEXT_TRACK_DATA_DIR", REPO_ROOT / "data")).resolve()
os.environ["NEXT_TRACK_DATA_DIR"] = str(DATA_DIR)

# embedded (the default): everything on this machine. cluster: the services `make cluster-up`
# starts (Postgres, Redis and Celery workers, an S3 bucket, an MLflow server); see
# orchestration/cluster/.
PROFILE = os.environ.get("NEXT_TRACK_PROFILE", "embedded")
# Where a run's files live (orchestration/storage.py): the data folder, or s3://bucket[/prefix].
STORAGE_URL = os.environ.get("NEXT_TRACK_STORAGE_URL") or DATA_DIR.as_uri()
S3_ENDPOINT_URL = os.environ.get("AWS_ENDPOINT_URL") or None
# This process's local copies of what lives in a bucket.
SCRATCH_DIR = Path(os.environ.get("NEXT_TRACK_SCRATCH_DIR", DATA_DIR / "scratch"))
# Names a step's metadata and MLflow runs carry: the Celery worker, or this machine.
WORKER_NAME = os.environ.get("NEXT_TRACK_WORKER") or socket.gethostname()
# A Postgres database for locks between processes on several machines (the cluster profile);
# unset: file locks, which hold between processes of one machine only.
LOCK_DATABASE_URL = os.environ.get("NEXT_TRACK_LOCK_DATABASE") or None

# Stable names in the store (data/<name> locally) of what plain `dbt build`, notebooks and
# serving read; each run writes its own copy under runs/<run id>/ and publishes it here.
WAREHOUSE_KEY = "warehouse.duckdb"
USER_ITEMS_WAREHOUSE_KEY = "warehouse_user_items.duckdb"
RAW_EVENTS_KEY = "raw/playlist_events.parquet"
SERVING_FOLDER = "serving"  # precomputed recommendation tables, one DuckDB file each
# The same, as local paths, in the embedded profile (plain dbt and the tests read them).
WAREHOUSE_PATH = DATA_DIR / WAREHOUSE_KEY
USER_ITEMS_WAREHOUSE_PATH = DATA_DIR / USER_ITEMS_WAREHOUSE_KEY
RAW_DIR = DATA_DIR / "raw"
RAW_EVENTS_PATH = DATA_DIR / RAW_EVENTS_KEY
SERVING_DIR = DATA_DIR / SERVING_FOLDER
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
# What the forkserver the step processes fork from imports, once per run: the definitions, and
# what step processes import to open the instance (SQLite storages: SQLAlchemy, Alembic) and
# MLflow's SQL store, which each of them would otherwise import afresh. A module that is not
# there is skipped (multiprocessing ignores a preload's ImportError).
STEP_PRELOAD_MODULES = [
    "orchestration.definitions",
    "orchestration.instance",
    "dagster._core.instance.factory",
    "dagster._core.storage.sqlite_storage",
    "dagster._core.storage.local_compute_log_manager",
    "mlflow.store.tracking.sqlalchemy_store",
]

MLFLOW_DIR = DATA_DIR / "mlflow"
MLFLOW_TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{MLFLOW_DIR}/mlflow.db")
# Artifacts of new experiments; on a tracking server (the cluster) its own store (None), which it
# proxies to the bucket.
MLFLOW_ARTIFACT_LOCATION = (
    os.environ.get("NEXT_TRACK_MLFLOW_ARTIFACTS", (MLFLOW_DIR / "artifacts").as_uri()) or None
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
