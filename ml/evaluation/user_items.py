"""The user-items protocol over folds: fit a candidate on the validation fold, choose on
validation NDCG@10 (above a coverage floor), refit the chosen configuration on train +
validation (the test fold's train) and score it once on test. Plain Python, shared by the
benchmark and the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ml.datasets.user_items import UserItemsFold
from ml.evaluation.candidates import (
    CandidateSpec,
    UnitData,
    fit_unit,
    refit_params,
    scored_variants,
)
from ml.evaluation.metrics import ranking_metrics
from ml.evaluation.ranking import R, ranked
from ml.recommenders.base import EpochCallback, FitInputs, Log, Recommender, no_log

KS = (10,)
SELECTION_METRIC = "ndcg_at_10"
COVERAGE_METRIC = "coverage_at_10"


@dataclass
class FoldResult:
    name: str  # family:params
    family: str
    params: dict[str, Any]  # what a refit should use (the two-tower's kept epochs)
    metrics: dict[str, float]
    fit_seconds: float
    facts: dict[str, float]  # the family's own figures (best epoch...)


def unit_data(
    fold: UserItemsFold, on_epoch: EpochCallback | None = None, early_stopping: bool = True
) -> UnitData:
    """A fold as a grid unit's data: the two-tower also gets the interactions' times, the item
    features and, with ``early_stopping``, the fold's evaluation split to stop on; every
    variant is scored at 10 on the evaluation split (NDCG, hit rate, recall, MRR, coverage)."""
    evaluation = fold.evaluation
    assert evaluation is not None, f"fold {fold.name} has no evaluation split"
    features, _ = fold.item_features()
    inputs = FitInputs(
        train=fold.train,
        times=fold.train_times,
        item_features=features,
        validation=evaluation if early_stopping else None,
        on_epoch=on_epoch,
    )
    return UnitData(
        inputs=inputs,
        validation=evaluation,
        n_items=fold.n_items,
        score=lambda top: ranking_metrics(top.ids, evaluation.labels, fold.n_items, KS),
        depth=max(KS),
        headline=SELECTION_METRIC,
    )


def run_on_fold(
    family: str,
    params: dict[str, Any],
    fold: UserItemsFold,
    log: Log = no_log,
    on_epoch: EpochCallback | None = None,
    early_stopping: bool = True,
    variants: list[dict[str, Any]] | None = None,
) -> tuple[Recommender, list[FoldResult]]:
    """Fit once, then score every ranking-only variant (``[{}]``: the params as given)."""
    spec = CandidateSpec(family, params, variants or [{}])
    data = unit_data(fold, on_epoch, early_stopping)
    unit = fit_unit(spec, data, log)
    results = [
        FoldResult(
            s.model.name, family, refit_params(s.model), s.metrics, unit.fit_seconds, unit.facts
        )
        for s in scored_variants(unit, spec, data, log)
    ]
    return unit.model, results


def best(results: list[R], min_coverage: float = 0.0, metric: str = SELECTION_METRIC) -> R:
    """Highest ``metric`` (NDCG@10), then hit rate@10, then name (equal figures choose the same
    way), among the results whose coverage@10 is at least ``min_coverage``.

    The floor keeps a model from winning by showing every user the same few items: a prior
    that ranks what is popular now lifts NDCG on a split where demand moves, and concentrates
    the lists. Coverage@10 grows with the number of users per item, so the floor is set per data
    set, from what the product needs (0: NDCG alone)."""
    eligible = [r for r in results if r.metrics[COVERAGE_METRIC] >= min_coverage]
    if not eligible:
        widest = max(results, key=lambda r: r.metrics[COVERAGE_METRIC])
        raise ValueError(
            f"no candidate reaches {COVERAGE_METRIC} {min_coverage:g}; the widest is "
            f"{widest.name} with {widest.metrics[COVERAGE_METRIC]:.4f}"
        )
    return ranked(eligible, metric, "hit_rate_at_10")[0]


class Refittable(Protocol):
    """A FoldResult, or the pipeline's CandidateResult: what a refit needs."""

    family: str
    params: dict[str, Any]


def refit_and_test(
    chosen: Refittable, test_fold: UserItemsFold, log: Log = no_log
) -> tuple[Recommender, FoldResult]:
    """The chosen configuration retrained on the test fold's train (train + validation), with
    its kept epochs and no early stopping (test is never looked at while fitting)."""
    model, (result,) = run_on_fold(
        chosen.family, chosen.params, test_fold, log, early_stopping=False
    )
    return model, result
