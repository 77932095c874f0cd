"""Run config of every configurable asset, with defaults and validation.

Dagster checks types and unknown keys when a run is launched; the ranges and paths below are
pydantic rules, checked by ``run_config_errors`` before any work starts (by the first step of a
run, by ``make run``, the sensor and the schedule) and again by each step for its own config.
"""

from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field, ValidationError, field_validator

from orchestration.settings import DEFAULT_SOURCE


class RawSourceConfig(dg.Config):
    source: str | None = Field(
        default=None,
        description="File or folder to ingest (Kaggle CSV, MPD JSON, Yes.com folder, canonical "
        "Parquet). Empty: $NEXT_TRACK_SOURCE if set, else synthetic playlists.",
    )
    synthetic_playlists: int = Field(default=5_000, ge=1, description="Synthetic scale: playlists.")
    synthetic_seed: int = Field(default=42, description="Synthetic seed: same seed, same data.")

    @field_validator("source")
    @classmethod
    def source_exists(cls, value: str | None) -> str | None:
        if value and not Path(value).expanduser().exists():
            raise ValueError(f"source {value!r}: no such file or folder")
        return value or None

    def source_path(self) -> Path | None:
        chosen = self.source or DEFAULT_SOURCE
        return Path(chosen).expanduser().resolve() if chosen else None


class DbtBuildConfig(dg.Config):
    sample_percent: float = Field(
        default=100.0,
        gt=0,
        le=100,
        description="Keep this percent of playlists (reproducible hash sample, like is_dev).",
    )
    split_salt: str = Field(default="next-track-v1", description="Salt of the split hash.")


class CandidateConfig(dg.Config):
    """One point of the grid (gensim Word2Vec hyperparameters)."""

    vector_size: int = Field(default=48, ge=2, le=1024)
    window: int = Field(default=10, ge=1, le=100)
    min_count: int = Field(default=3, ge=1)
    epochs: int = Field(default=30, ge=1, le=500)
    ns_exponent: float = Field(default=0.75, ge=-2.0, le=2.0)
    sg: int = Field(default=0, ge=0, le=1, description="1 = skip-gram, 0 = CBOW")
    negative: int = Field(default=5, ge=1, le=50)
    sample: float = Field(default=1e-3, ge=0.0, lt=1.0)


# Defaults are plain dicts: Dagster's config schema holds data, not Config objects.
DEFAULT_GRID = [
    {},  # the reference tutorial
    # Caselles-Dupré et al. 2018 on music: skip-gram, small window, negative ns_exponent
    {"sg": 1, "window": 3, "min_count": 1, "ns_exponent": -0.5, "sample": 1e-5},
    {"vector_size": 64, "window": 5, "min_count": 1},
    {"sg": 1, "vector_size": 64, "window": 5, "min_count": 1},
]


class StrategyConfig(dg.Config):
    kind: Literal["last", "last_known", "recency_mean"] = "recency_mean"
    n_last: int = Field(default=5, ge=1, le=100)
    decay: float = Field(default=0.7, gt=0.0, le=1.0)
    unknown: Literal["popular", "random"] = "popular"
    exclude_seen: bool = True


DEFAULT_STRATEGIES = [
    {"kind": "last", "unknown": "random", "exclude_seen": False},  # the tutorial's
    {"kind": "last"},
    {"kind": "last_known"},
    {"kind": "recency_mean", "n_last": 5, "decay": 0.7},
    {"kind": "recency_mean", "n_last": 3, "decay": 0.5},
]


class TrainingConfig(dg.Config):
    grid: list[CandidateConfig] = Field(
        default=DEFAULT_GRID, description="Hyperparameter candidates (tutorial's always added)."
    )
    seed: int = 42
    max_parallel: int = Field(default=2, ge=1, le=64, description="Candidates trained at once.")


class EvaluationConfig(dg.Config):
    strategies: list[StrategyConfig] = Field(default=DEFAULT_STRATEGIES)
    k: int = Field(default=100, ge=1, le=10_000, description="K of hit rate@K used to select.")


OP_CONFIGS: dict[str, type[dg.Config]] = {
    "raw_playlist_events": RawSourceConfig,
    "dbt_models": DbtBuildConfig,
    "track_embeddings": TrainingConfig,
    "candidate_metrics": EvaluationConfig,
}


def run_config_errors(run_config: dict) -> list[str]:
    """Every pydantic error of every op's config in ``run_config``, as readable lines."""
    errors = []
    ops = run_config.get("ops", {}) or {}
    for op_name, config_class in OP_CONFIGS.items():
        values = (ops.get(op_name) or {}).get("config") or {}
        try:
            config_class(**values)
        except ValidationError as e:
            for error in e.errors():
                where = ".".join(str(part) for part in error["loc"])
                errors.append(f"{op_name}.{where}: {error['msg']}")
    return errors
