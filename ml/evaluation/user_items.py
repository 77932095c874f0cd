"""The user-items protocol over folds: fit a candidate on the validation fold, choose on
validation NDCG@10 (above a coverage floor), refit the chosen configuration on train +
validation (the test fold's train) and score it once on test. Plain Python, shared by the
benchmark and the pipeline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import TypeAdapter

from ml.artifacts import ArtifactStore
from ml.datasets.user_items import UserItemsFold
from ml.evaluation.candidates import CandidateResult, CandidateSpec
from ml.evaluation.metrics import ranking_metrics
from ml.evaluation.ranking import R, ranked
from ml.recommenders.base import EpochCallback, FitInputs, Log, Recommender, no_log
from ml.recommenders.families import create

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


def fit_on_fold(
    model: Recommender,
    fold: UserItemsFold,
    log: Log = no_log,
    on_epoch: EpochCallback | None = None,
    early_stopping: bool = True,
) -> float:
    """Fit on the fold's train; seconds taken. The two-tower also gets the interactions' times,
    the item features and, with ``early_stopping``, the fold's evaluation split to stop on."""
    started = time.perf_counter()
    features, _ = fold.item_features()
    inputs = FitInputs(
        train=fold.train,
        times=fold.train_times,
        item_features=features,
        validation=fold.evaluation if early_stopping else None,
        on_epoch=on_epoch,
    )
    model.fit_inputs(inputs, log)
    return time.perf_counter() - started


def evaluate_on_fold(model: Recommender, fold: UserItemsFold) -> dict[str, float]:
    """NDCG, hit rate, recall, MRR and coverage at 10 on the fold's evaluation split."""
    assert fold.evaluation is not None, f"fold {fold.name} has no evaluation split"
    top = model.top_k(fold.evaluation.queries, max(KS))
    return ranking_metrics(top.ids, fold.evaluation.labels, model.n_items, KS)


def refit_params(model: Recommender) -> dict[str, Any]:
    """The params that retrain ``model`` on more data (for a two-tower that stopped early: as
    many epochs as it kept)."""
    params = model.refit_params()
    return TypeAdapter(type(params)).dump_python(params, mode="json")


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
    model = create(family, params, fold.n_items)
    seconds = fit_on_fold(model, fold, log, on_epoch, early_stopping)
    facts = {k: v for k, v in model.training.items() if isinstance(v, float)}
    results = []
    for variant in variants or [{}]:
        view = model.with_scoring(**variant) if variant else model
        metrics = evaluate_on_fold(view, fold)
        results.append(FoldResult(view.name, family, refit_params(view), metrics, seconds, facts))
        log(f"{fold.name} {view.name}: NDCG@10 {metrics['ndcg_at_10']:.4f}")
    return model, results


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


def run_unit(
    spec: CandidateSpec,
    fold: UserItemsFold,
    store: ArtifactStore,
    prefix: str,
    log: Log = no_log,
    on_epoch: EpochCallback | None = None,
) -> list[CandidateResult]:
    """A grid unit on the validation fold, as next-track's ``run_candidate``: fit once (early
    stopping on validation for the two-tower, ``on_epoch`` told each epoch's figures), save as
    ``<prefix>/<unit>`` in ``store``, score every variant. Raises ``CannotFit``."""
    model, fold_results = run_on_fold(
        spec.family, spec.params, fold, log, on_epoch, variants=spec.variants
    )
    model_key = f"{prefix}/{spec.unit_name}"
    model.save(store.writable(model_key))
    store.commit(model_key)
    return [
        CandidateResult(
            name=result.name,
            family=spec.family,
            unit=spec.unit_name,
            params=result.params,  # what a refit uses (a two-tower's kept epochs)
            variant=dict(variant),
            model_key=model_key,
            metrics=result.metrics,
            fit_seconds=result.fit_seconds,
            eval_seconds=0.0,
            baseline=spec.baseline,
            facts=result.facts,
        )
        for variant, result in zip(spec.variants, fold_results, strict=True)
    ]
