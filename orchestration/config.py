"""Run config of every configurable asset, with defaults and validation.

Dagster checks types and unknown keys when a run is launched; ranges, paths and every family's
hyperparameters are checked by ``run_config_errors`` before any work starts (by the first step
of a run, by ``make run``, the sensor and the schedule), naming the field.
"""

from pathlib import Path
from typing import Any, Literal

import dagster as dg
from pydantic import Field, ValidationError, field_validator

from ml.evaluation.budget import GridBudget
from ml.evaluation.candidates import CandidateSpec
from ml.evaluation.halving import Rung
from ml.evaluation.selection import SelectionMetric
from ml.recommenders import neighbourhood, sequential_rules, slist, word2vec
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
        # A URL (the run store's bucket) is checked when the ingest fetches it.
        if value and not is_url(value) and not Path(value).expanduser().exists():
            raise ValueError(f"source {value!r}: no such file or folder")
        return value or None

    def source_or_default(self) -> str | None:
        """The source to ingest: a URL as given, a local path made absolute, None: synthetic."""
        chosen = self.source or DEFAULT_SOURCE
        if not chosen or is_url(chosen):
            return chosen or None
        return str(Path(chosen).expanduser().resolve())


def is_url(value: str) -> bool:
    return "://" in value and not value.startswith("file://")


class DbtBuildConfig(dg.Config):
    sample_percent: float = Field(
        default=100.0,
        gt=0,
        le=100,
        description="Keep this percent of playlists (reproducible hash sample, like is_dev).",
    )
    split_salt: str = Field(default="next-track-v1", description="Salt of the split hash.")


class UserItemsDbtConfig(dg.Config):
    """The user-items dbt vars (dbt_project.yml documents each)."""

    min_user_interactions: int = Field(default=20, ge=1)
    interactions_sample_percent: float = Field(default=100.0, gt=0, le=100)
    interactions_sample_unit: Literal["user", "row"] = "user"
    interactions_split: Literal["auto", "time_range", "quantile", "dates", "per_user"] = "auto"
    test_share: float = Field(default=0.2, gt=0, lt=1)
    validation_share: float = Field(default=0.2, gt=0, lt=1)
    training_end_date: str | None = Field(default=None, description="dates split: YYYY-MM-DD")
    validation_end_date: str | None = Field(default=None, description="dates split: YYYY-MM-DD")
    relevance_min_rating: float | None = Field(default=4.0, description="null: no filter")

    def dbt_vars(self) -> dict:
        return self.model_dump()


class DatasetConfig(dg.Config):
    validation_sample: int = Field(
        default=10_000,
        ge=0,
        description="Validation queries every candidate is scored on (a fixed, seeded sample; "
        "0 = all). The finalists are re-scored on a larger sample, finalist_sample.",
    )
    finalist_sample: int = Field(
        default=50_000,
        ge=0,
        description="Validation queries the finalists and the baselines are re-scored on (a "
        "seeded sample holding validation_sample; 0 = all): a hit rate's standard error on "
        "50,000 is at most 0.0023. Not when one finalist leads every baseline on the gate's "
        "metrics by over two standard errors on validation_sample: more queries would be "
        "unlikely to change the selection.",
    )
    seed: int = Field(default=0, description="Seed of the validation sample.")


class CandidateConfig(dg.Config):
    """One unit of the grid: a family's fit hyperparameters and the scoring variants tried on
    the fitted model (each family's fields are documented in its ml/recommenders module)."""

    family: str
    params: dict[str, Any] = Field(default_factory=dict)
    variants: list[dict[str, Any]] = Field(default_factory=lambda: [{}])
    max_train_rows: int | None = Field(
        default=None, ge=1, description="Skip this unit (logged) on a larger train split."
    )
    min_train_rows: int | None = Field(
        default=None, ge=1, description="Skip this unit (logged) on a smaller train split."
    )
    label: str | None = Field(default=None, description="Tells apart units of one fit.")

    def spec(self) -> CandidateSpec:
        return CandidateSpec(
            self.family,
            dict(self.params),
            [dict(v) for v in self.variants],
            max_train_rows=self.max_train_rows,
            min_train_rows=self.min_train_rows,
            label=self.label,
        )


MIN_UNIQUE_SHARE = 0.005  # of the queries: the second stage's floor for a family (SelectionConfig)


def grid(family: str, units: list[dict]) -> list[dict]:
    """Default grid entries as plain dicts: Dagster's config schema holds data, not objects."""
    return [{"family": family, **unit} for unit in units]


class GridConfig(dg.Config):
    candidates: list[CandidateConfig] = Field(default_factory=list)


class HalvingConfig(dg.Config):
    """Successive halving (ml/evaluation/halving.py): on a large train split, the units of a
    family with several first fit on ``share`` of the train playlists; a unit goes on to the
    full fit unless its family's best beats it at that rung by over ``margin_se`` standard
    errors on ``metric``, and a whole family stops when its best is that far below the best of
    the rung's references of other families (``rung_references``) and its list holds a relevant
    track none of theirs holds for fewer than ``min_unique_share`` of the queries. With
    ``budget_minutes`` the rung also times every unit (ml/evaluation/budget.py)."""

    share: float = Field(default=0.25, gt=0, lt=1, description="Of the train playlists.")
    margin_se: float = Field(
        default=2.0, ge=0, description="Standard errors of the gap to the family's best."
    )
    metric: SelectionMetric = Field(default="ndcg_at_10", description="Compared at the rung.")
    min_train_rows: int = Field(
        default=500_000,
        ge=0,
        description="Screen only from this many train rows (below, every unit runs in full: "
        "a rung would cost more than it saves). A large number turns screening off.",
    )
    min_unique_share: float = Field(
        default=MIN_UNIQUE_SHARE,
        ge=0.0,
        le=1.0,
        description="next_track_candidate_metrics' floor for the second stage, measured against "
        "the references' lists.",
    )

    budget_minutes: float | None = Field(
        default=None,
        gt=0,
        description="The run's time budget (none by default). A budgeted run screens every "
        "unit at the rung (none once the grid's share of the budget is spent), starts the "
        "full fits in order of value per second at the rung, and starts none that its rung's "
        "time says would end after the grid's share; such a unit keeps its fit at the rung.",
    )
    after_grid_share: float = Field(
        default=0.6,
        ge=0.0,
        lt=1.0,
        description="Of the budget, kept for the steps after the grid (second stage, "
        "selection, registration, serving table; docs/benchmarks.md has their share).",
    )

    estimate_margin: float = Field(
        default=1.5,
        ge=1.0,
        description="A full fit starts only if this many times its rung's estimate is left "
        "(Word2Vec's full fit at full scale took 1.3x this estimate, docs/benchmarks.md).",
    )

    def budget(self) -> GridBudget | None:
        if self.budget_minutes is None:
            return None
        return GridBudget(self.budget_minutes, self.after_grid_share, self.estimate_margin)

    def rung(self, seed: int) -> Rung:
        return Rung(
            self.share,
            self.margin_se,
            self.metric,
            self.min_train_rows,
            min_unique_share=self.min_unique_share,
            seed=seed,
        )


WORD2VEC_GRID = grid("word2vec", word2vec.DEFAULT_GRID)
SEQUENTIAL_RULES_GRID = grid("sequential_rules", sequential_rules.DEFAULT_GRID)
SLIST_GRID = grid("slist", slist.DEFAULT_GRID)
NEIGHBOURHOOD_GRID = grid("item_knn", neighbourhood.ITEM_KNN_GRID) + grid(
    "session_knn", neighbourhood.SESSION_KNN_GRID
)


# user-items: the published two-tower configuration, a tuned one with recent interactions drawn
# more often (and a recency prior as ranking variants), EASE and item-kNN over the whole history.
TWO_TOWER_TUNED = {"batch_size": 256, "epochs": 60, "item_bias": True, "weight_decay": 0.01}
# Ranking-only two-tower variants, scored on one fit: a time-decayed popularity prior and an
# all-time popularity penalty (equal weights leave the trend). benchmarks/bench_user_items.py
# measured them on MovieLens-100k; selection keeps those above the coverage floor.
TWO_TOWER_RANKINGS = [
    {"recency_prior": prior, "popularity_penalty": penalty}
    for prior in (0.0, 0.5, 1.0, 1.5, 2.0)
    for penalty in (0.0, 0.5, 0.75, 1.0, 1.25, 1.5)
]
USER_ITEMS_GRID = [
    # The published two-tower's configuration (30 epochs, no early stopping).
    {"family": "two_tower", "params": {"embedding_dim": 16, "negatives": 10, "epochs": 30,
                                       "patience": 0}, "variants": TWO_TOWER_RANKINGS},
    {"family": "two_tower", "params": TWO_TOWER_TUNED, "variants": TWO_TOWER_RANKINGS},
    {"family": "ease", "params": {"l2": 200.0}},
    {"family": "ease", "params": {"l2": 1000.0}},
    {"family": "item_knn", "params": {"neighbours": 1000},
     "variants": [{"last_n": 10_000, "recency_decay": 1.0}]},
]  # fmt: skip


class UserItemsSelectionConfig(dg.Config):
    metric: Literal["ndcg_at_10", "hit_rate_at_10", "recall_at_10"] = Field(
        default="ndcg_at_10", description="Validation metric the candidates are chosen on."
    )
    min_coverage: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="Validation coverage@10 a candidate needs to be selected (0: the metric "
        "alone). Keeps a model from winning by showing every user the same few items. When no "
        "candidate reaches it, the best by the metric is selected with a warning naming the "
        "widest candidate.",
    )
    min_validation_users: int = Field(
        default=50,
        ge=1,
        description="Validation users with labels the gate needs: on fewer, no figure tells a "
        "model from popularity, and nothing is registered.",
    )


class SelectionConfig(dg.Config):
    metric: SelectionMetric = Field(
        default="ndcg_at_10",
        description="Validation metric the candidates are ranked, kept as finalists and selected "
        "on (hit_rate_at_100 breaks ties; MRR@100 when it is the metric); the hybrid's weights "
        "are searched at its K. ndcg_at_10 rewards the top 10 the serving table holds "
        "(docs/ranking.md).",
    )
    finalists: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Best candidates re-scored on the finalist sample when validation was "
        "sampled; of these, only those within two standard errors of the best on the sample, "
        "then within two of the paired difference with the best on the sample's queries "
        "(none when the sample decides: dataset config finalist_sample).",
    )
    hybrid: bool = Field(default=True, description="Also try a hybrid of each family's best.")
    min_validation_queries: int = Field(
        default=50,
        ge=1,
        description="Validation queries the gate needs: on fewer, no figure tells a model from "
        "the baselines, and nothing is registered.",
    )
    hybrid_depth: int = Field(
        default=200, ge=1, le=10_000, description="Candidates each hybrid component proposes."
    )
    reranker: bool = Field(
        default=True,
        description="Also try a LightGBM LambdaRank reranker over each family's best, learned "
        "on the validation sample and measured out of sample (docs/ranking.md).",
    )
    reranker_depth: int = Field(
        default=100, ge=1, le=10_000, description="Candidates each reranker component proposes."
    )
    min_unique_share: float = Field(
        default=MIN_UNIQUE_SHARE,
        ge=0.0,
        le=1.0,
        description="A family's best joins the hybrid and the reranker only if, on the "
        "validation sample, its list holds a relevant track no other joining family's does for "
        "at least this share of the queries (the best family always joins; the family adding "
        "least leaves first and the others are measured again without it); else it would be "
        "scored at every query and request for what the others already find. Its item vectors "
        "still give the reranker's cosine features.",
    )


class SelectedModelConfig(dg.Config):
    refit: bool = Field(
        default=True,
        description="Refit the selected model and the baselines on train + validation before "
        "scoring them once on test and shipping the selected one, as the user-items use case "
        "does: a family refits with the params validation chose; a reranker or hybrid keeps "
        "what it learned on validation and refits its components (one fitted on a seeded share "
        "of the playlists, Word2Vec on large data, keeps its fit). Off: test and the bundle use "
        "the models fitted on train alone (no second fit).",
    )


class ServingTableConfig(dg.Config):
    k: int = Field(default=10, ge=1, le=1_000, description="Recommendations kept per key.")
    batch: int = Field(default=20_000, ge=1, description="Keys scored at once (memory bound).")


class TrackTableConfig(ServingTableConfig):
    max_tracks: int = Field(
        default=100_000,
        ge=0,
        description="Table the next tracks of the most-played tracks only, this many (0: every "
        "track). Tabling costs one champion query per track; the rest are one request to the "
        "served model (make serve).",
    )


OP_CONFIGS: dict[str, type[dg.Config]] = {
    "raw_playlist_events": RawSourceConfig,
    "user_items_dbt_models": UserItemsDbtConfig,
    "next_track_dbt_models": DbtBuildConfig,
    "next_track_dataset": DatasetConfig,
    "next_track_candidate_metrics": SelectionConfig,
    "user_items_candidate_metrics": UserItemsSelectionConfig,
    "next_track_selected_model": SelectedModelConfig,
    "track_recommendations": TrackTableConfig,
    "user_recommendations": ServingTableConfig,
}
GRID_ASSETS: dict[str, list[dict]] = {
    "track_embeddings": WORD2VEC_GRID,
    "sequential_rules_candidates": SEQUENTIAL_RULES_GRID,
    "neighbourhood_candidates": NEIGHBOURHOOD_GRID,
    "slist_candidates": SLIST_GRID,
    "user_items_candidates": USER_ITEMS_GRID,
}


# Assets renamed when both use cases took one naming rule (<use case>_<stage>).
RENAMED_OPS = {
    "candidate_metrics": "next_track_candidate_metrics",
    "selected_model": "next_track_selected_model",
    "registered_model": "next_track_registered_model",
    "baseline_candidates": "next_track_baseline_candidates",
    "user_item_candidates": "user_items_candidates",
    "user_items_baseline": "user_items_baseline_candidates",
}


def grid_candidates(run_config: dict, asset: str) -> list[dict]:
    """A grid asset's units as ``run_config`` sets them, else its default."""
    ops = run_config.get("ops", {}) or {}
    return ((ops.get(asset) or {}).get("config") or {}).get("candidates", GRID_ASSETS[asset])


def run_config_errors(run_config: dict) -> list[str]:
    """Every error of every op's config in ``run_config``, as readable lines naming the field."""
    ops = run_config.get("ops", {}) or {}
    errors = [f"{old}: renamed {new}" for old, new in RENAMED_OPS.items() if old in ops]
    for op_name, config_class in OP_CONFIGS.items():
        values = (ops.get(op_name) or {}).get("config") or {}
        try:
            config_class(**values)
        except ValidationError as e:
            errors.extend(_lines(op_name, e))
    for asset in GRID_ASSETS:
        for i, candidate in enumerate(grid_candidates(run_config, asset)):
            where = f"{asset}.candidates.{i}"
            try:
                CandidateConfig(**candidate).spec().validate()
            except ValidationError as e:
                errors.extend(_lines(f"{where}.{candidate.get('family')}", e))
            except (ValueError, TypeError) as e:
                errors.append(f"{where}: {e}")
    return errors


def _lines(prefix: str, error: ValidationError) -> list[str]:
    return [
        f"{prefix}.{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()
    ]
