"""The files the model assets hand to each other under data/models, and their shared helpers."""

import json
from pathlib import Path

from dagster_dbt import get_asset_key_for_model

from orchestration.assets.dbt import dbt_models
from orchestration.settings import MODELS_DIR

PLAYLIST_SPLITS = get_asset_key_for_model([dbt_models], "playlist_splits")
DIM_TRACKS = get_asset_key_for_model([dbt_models], "dim_tracks")

CANDIDATES_DIR = MODELS_DIR / "candidates"  # one embedding folder per grid candidate
SELECTED_DIR = MODELS_DIR / "selected"  # the bundle the MLflow pyfunc ships
EMBEDDINGS_SUMMARY = MODELS_DIR / "track_embeddings.json"
CANDIDATE_METRICS = MODELS_DIR / "candidate_metrics.json"
SELECTED_SUMMARY = MODELS_DIR / "selected_model.json"


def evaluation_ks(k: int) -> tuple[int, ...]:
    """10, 20 and 100 always (100 is the promotion metric's K), plus the configured K."""
    return tuple(sorted({10, 20, 100, k}))


def metric_columns(k: int) -> list[str]:
    return [f"hit_rate_at_{x}" for x in evaluation_ks(k)] + [
        f"mrr_at_{k}",
        f"ndcg_at_{k}",
        f"coverage_at_{k}",
    ]


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, default=str), encoding="utf-8")


def read_json(path: Path):
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: materialize the upstream asset first")
    return json.loads(path.read_text(encoding="utf-8"))
