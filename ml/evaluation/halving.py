"""Successive halving for the grid (Jamieson & Talwalkar 2016, the inner loop of Hyperband): each
unit of a family first fits on a share of the train playlists (the rung) and is scored on the
validation sample; only the units within reach of their family's best at the rung get the full
budget. Units compete within their family, not across families: the hybrid and the reranker
build on every family's best, so a family weaker alone can still earn its place there.

A whole family stops when it can earn a place nowhere: its best unit at the rung is below a
reference fitted on the same rung (the last-track rule, the baseline every run must beat) by
over the margin, and its list holds a relevant track the reference's list does not for fewer
than ``min_unique_share`` of the queries. The second stage takes a family only above that share
against every other family's list, which can only be lower than against the reference's alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ml.artifacts import ArtifactStore
from ml.datasets.evaluation_split import EvaluationSplit
from ml.evaluation.candidates import (
    CandidateResult,
    CandidateSpec,
    evaluate,
    run_candidate,
    unique_label_shares,
)
from ml.evaluation.metrics import DEFAULT_KS
from ml.recommenders.base import Log, no_log
from ml.recommenders.popularity import Popularity
from ml.sequences import Sequences


@dataclass(frozen=True)
class Rung:
    """How the grid screens its units before the full fit."""

    share: float  # of the train playlists a screened unit fits on
    margin_se: float  # a unit goes on unless its family's best beats it by this many SEs
    metric: str  # the selection metric the rung compares on
    min_train_rows: int  # below this many train rows every unit runs in full (screening costs more)
    min_unique_share: float  # the second stage's floor for a family
    depth: int = 100  # of the lists compared with the reference's
    seed: int = 0

    def train(self, train: Sequences) -> Sequences:
        """The rung's train playlists: a seeded sample of ``share`` of them, in their order."""
        size = max(1, math.ceil(self.share * len(train)))
        rows = np.random.default_rng(self.seed).choice(len(train), size=size, replace=False)
        return train.take(np.sort(rows))

    def screened(self, specs: Iterable[CandidateSpec], train_rows: int) -> list[CandidateSpec]:
        """The units that go through the rung: those of a family with another unit that can run
        at this size (alone in its family, a unit has nothing to be compared with)."""
        if train_rows < self.min_train_rows:
            return []
        runnable = [s for s in specs if s.size_refusal(train_rows) is None]
        families = [s.family for s in runnable]
        return [s for s in runnable if families.count(s.family) > 1]


@dataclass(frozen=True)
class RungEntry:
    """A unit's figures at the rung: its results (one per scoring variant) and, for its best
    variant, how it compares with the reference fitted on the same rung."""

    results: list[CandidateResult]
    train_rows: int  # the rung's
    reference: str  # the reference's candidate name
    reference_metrics: dict[str, float]
    share_beyond_reference: float  # of queries: a relevant track only this unit's list holds

    def best(self, metric: str) -> CandidateResult:
        return max(self.results, key=lambda r: r.metrics[metric])


def screen_candidate(
    spec: CandidateSpec,
    reference: CandidateSpec,
    rung: Rung,
    train: Sequences,
    validation: EvaluationSplit,
    popularity: Popularity,
    store: ArtifactStore,
    prefix: str,
    ks: tuple[int, ...] = DEFAULT_KS,
    log: Log = no_log,
) -> RungEntry:
    """Fit ``spec`` and ``reference`` on the rung's share of ``train``, score both on
    ``validation``; raises ``CannotFit`` as ``run_candidate`` does."""
    sample = rung.train(train)
    results = run_candidate(spec, sample, validation, popularity, store, prefix, ks, log)
    best = max(results, key=lambda r: r.metrics[rung.metric]).load(store)
    baseline = reference.recommender(popularity.n_items)
    baseline.fit(sample, log)
    baseline = baseline.with_scoring(**reference.variants[0])
    metrics, _ = evaluate(baseline, validation, popularity, ks)
    lists = [m.top_k(validation.queries, rung.depth) for m in (best, baseline)]
    share = unique_label_shares(lists, validation.labels, popularity.n_items)[0]
    log(
        f"{spec.unit_name} at the rung: a relevant track the reference's list lacks for {share:.2%}"
    )
    return RungEntry(results, len(sample.items), baseline.name, metrics, share)


@dataclass(frozen=True)
class RungDecision:
    """Whether one screened unit gets the full budget, with the figures that decided."""

    unit: str
    family: str
    candidate: str  # the unit's best scoring variant at the rung
    value: float
    best_value: float  # the family's best unit's, at the rung
    margin: float  # how far below the family's best a unit may be and still go on
    promoted: bool
    reason: str


def gap_margin(margin_se: float, metric: str, *metrics: dict[str, float]) -> float:
    """``margin_se`` standard errors of a difference, each side's own SE combined as if
    independent (conservative: both sides are scored on the same queries)."""
    return margin_se * math.hypot(*(m.get(f"{metric}_stderr", 0.0) for m in metrics))


def family_verdict(entry: RungEntry, rung: Rung) -> str | None:
    """Why a family whose best unit at the rung is ``entry`` can earn a place nowhere, if so."""
    metric = rung.metric
    mine, reference = entry.best(metric).metrics, entry.reference_metrics
    margin = gap_margin(rung.margin_se, metric, mine, reference)
    below = reference[metric] - mine[metric] > margin
    if not below or entry.share_beyond_reference >= rung.min_unique_share:
        return None
    return (
        f"the family's best at the rung, {entry.best(metric).name}, scores {metric} "
        f"{mine[metric]:.4f} against the reference {entry.reference}'s {reference[metric]:.4f} "
        f"(a gap over {margin:.4f} stops) and holds a relevant track the reference's list lacks "
        f"for {entry.share_beyond_reference:.2%} of the queries (the second stage needs "
        f"{rung.min_unique_share:.2%}): it could neither be selected nor join the second stage"
    )


def decide(entries: dict[str, RungEntry], rung: Rung) -> list[RungDecision]:
    """Per screened unit, go on or stop: the whole family stops when ``family_verdict`` says so;
    else a unit stops when its family's best unit beats its best variant by more than
    ``margin_se`` standard errors of the difference."""
    metric = rung.metric
    best_of_unit = {unit: e.best(metric) for unit, e in entries.items() if e.results}
    decisions = []
    for unit, mine in best_of_unit.items():
        rivals = [u for u, r in best_of_unit.items() if r.family == mine.family]
        best_unit = max(rivals, key=lambda u: best_of_unit[u].metrics[metric])  # first of equals
        best = best_of_unit[best_unit]
        margin = gap_margin(rung.margin_se, metric, mine.metrics, best.metrics)
        value, best_value = mine.metrics[metric], best.metrics[metric]
        stopped_family = family_verdict(entries[best_unit], rung)
        promoted = stopped_family is None and best_value - value <= margin
        verdict = "went on to the full fit" if promoted else "stopped at the rung"
        reason = stopped_family or (
            f"{mine.name} {value:.4f} against the family's best, {best_unit}'s {best.name} "
            f"{best_value:.4f} (a gap over {margin:.4f} stops)"
        )
        decisions.append(
            RungDecision(
                unit=unit,
                family=mine.family,
                candidate=mine.name,
                value=value,
                best_value=best_value,
                margin=margin,
                promoted=promoted,
                reason=f"{verdict}: {reason}",
            )
        )
    return decisions
