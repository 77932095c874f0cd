"""Successive halving for the grid (Jamieson & Talwalkar 2016, the inner loop of Hyperband): each
unit of a family first fits on a share of the train playlists (the rung) and is scored on the
validation sample; only the units within reach of their family's best at the rung get the full
budget. Units compete within their family, not across families: the hybrid and the reranker
build on every family's best, so a family weaker alone can still earn its place there.

A whole family stops when it can earn a place nowhere, judged against a pool of cheap reference
units of the other families fitted on the same rung: its best unit is below the best reference
by over the margin (it would not be selected alone), and its list holds a relevant track no
reference list holds for fewer than ``min_unique_share`` of the queries (the floor at which the
second stage takes a family, ml/evaluation/candidates.py ``ScoredComponents.contributing``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from ml.artifacts import ArtifactStore
from ml.evaluation.candidates import (
    CandidateResult,
    CandidateSpec,
    UnitData,
    fit_unit,
    run_unit,
    scored_variants,
    unique_label_shares,
)
from ml.recommenders.base import Log, TopK, no_log
from ml.sequences import Sequences


@dataclass(frozen=True)
class Rung:
    """How the grid screens its units before the full fit."""

    share: float  # of the train playlists a screened unit fits on
    margin_se: float  # a unit goes on unless its family's best beats it by this many SEs
    metric: str  # the selection metric the rung compares on
    min_train_rows: int  # below this many train rows every unit runs in full (screening costs more)
    min_unique_share: float  # the second stage's floor for a family
    seed: int = 0

    def train(self, train: Sequences) -> Sequences:
        """The rung's train playlists: a seeded sample of ``share`` of them, in their order."""
        return train.sample(self.share, self.seed)

    def data(self, data: UnitData) -> UnitData:
        """``data`` with the rung's train playlists."""
        return replace(data, inputs=replace(data.inputs, train=self.train(data.inputs.train)))

    def screened(
        self, specs: Iterable[CandidateSpec], train_rows: int, budgeted: bool = False
    ) -> list[CandidateSpec]:
        """The units that go through the rung: those of a family with another unit that can run
        at this size (a lone unit would pay for the rung to stop at most itself, and its family
        is judged again by the second stage). A ``budgeted`` run screens every unit that can
        run, at any size: the rung is where its time estimate comes from."""
        runnable = [s for s in specs if s.size_refusal(train_rows) is None]
        if budgeted:
            return runnable
        if train_rows < self.min_train_rows:
            return []
        families = [s.family for s in runnable]
        return [s for s in runnable if families.count(s.family) > 1]


@dataclass(frozen=True)
class Reference:
    """A reference unit fitted at the rung: its figures and its lists on the validation sample."""

    name: str
    family: str
    metrics: dict[str, float]
    top: TopK


@dataclass(frozen=True)
class RungReferences:
    """What screened units are judged against: the references, and the sample's labels."""

    references: list[Reference]
    labels: Sequences
    n_items: int

    def of_other_families(self, family: str) -> list[Reference]:
        return [r for r in self.references if r.family != family]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        described = [
            {"name": r.name, "family": r.family, "metrics": r.metrics} for r in self.references
        ]
        (folder / "references.json").write_text(
            json.dumps({"n_items": self.n_items, "references": described})
        )
        for i, reference in enumerate(self.references):
            reference.top.save(folder / f"top_{i}")
        self.labels.save(folder, "labels")

    @classmethod
    def load(cls, folder: Path) -> RungReferences:
        saved = json.loads((folder / "references.json").read_text())
        references = [
            Reference(r["name"], r["family"], r["metrics"], TopK.load(folder / f"top_{i}"))
            for i, r in enumerate(saved["references"])
        ]
        return cls(references, Sequences.load(folder, "labels", mmap=False), saved["n_items"])


def fit_references(
    specs: list[CandidateSpec], rung: Rung, data: UnitData, log: Log = no_log
) -> RungReferences:
    """Each spec (its first scoring variant) fitted on the rung's share of ``data``'s train,
    scored on its validation split; its lists (unfilled, as deep as ``data`` scores) kept."""
    at_rung = rung.data(data)
    references = []
    for spec in specs:
        first = replace(spec, variants=spec.variants[:1])
        (scored,) = scored_variants(fit_unit(first, at_rung, log), first, at_rung, log)
        references.append(Reference(scored.model.name, spec.family, scored.metrics, scored.top))
        log(f"rung reference {scored.model.name}: {rung.metric} {scored.metrics[rung.metric]:.4f}")
    return RungReferences(references, data.validation.labels, data.n_items)


@dataclass(frozen=True)
class RungEntry:
    """A unit's figures at the rung: its results (one per scoring variant), and where its best
    variant's lists on the validation sample are stored (unfilled, as long as the longest
    cut-off its metrics are computed at)."""

    results: list[CandidateResult]
    train_rows: int  # the rung's
    top_key: str

    def best(self, metric: str) -> CandidateResult:
        return max(self.results, key=lambda r: r.metrics[metric])


def screen_candidate(
    spec: CandidateSpec,
    rung: Rung,
    data: UnitData,
    store: ArtifactStore,
    prefix: str,
    log: Log = no_log,
) -> RungEntry:
    """``run_unit`` on the rung's share of ``data``'s train, with the best variant's lists. The
    rung stands in for the full fit, so the unit's size limits are not checked against the
    share (``Rung.screened`` checked them against the whole split): a unit meant for large
    data is screened, not refused for the sample's size."""
    at_rung = rung.data(data)
    unlimited = replace(spec, min_train_rows=None, max_train_rows=None)
    results = run_unit(unlimited, at_rung, store, prefix, log)
    best = max(results, key=lambda r: r.metrics[rung.metric]).load(store)
    top_key = f"{prefix}/{spec.unit_name}__best_lists"
    best.top_k(data.validation.queries, data.depth).save(store.writable(top_key))
    store.commit(top_key)
    return RungEntry(results, len(at_rung.inputs.train.items), top_key)


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


def family_verdict(
    entry: RungEntry, references: RungReferences, rung: Rung, store: ArtifactStore
) -> str | None:
    """Why a family whose best unit at the rung is ``entry`` can earn a place nowhere, if so."""
    metric = rung.metric
    others = references.of_other_families(entry.results[0].family)
    if not others:
        return None
    mine = entry.best(metric)
    best = max(others, key=lambda r: r.metrics[metric])
    margin = gap_margin(rung.margin_se, metric, mine.metrics, best.metrics)
    share = unique_label_shares(
        [TopK.load(store.stage(entry.top_key)), *(r.top for r in others)],
        references.labels,
        references.n_items,
    )[0]
    if best.metrics[metric] - mine.metrics[metric] <= margin or share >= rung.min_unique_share:
        return None
    return (
        f"the family's best at the rung, {mine.name}, scores {metric} "
        f"{mine.metrics[metric]:.4f} against the reference {best.name}'s "
        f"{best.metrics[metric]:.4f} (a gap over {margin:.4f} stops), and its list holds a "
        f"relevant track that none of {', '.join(r.name for r in others)} holds for {share:.2%} "
        f"of the queries (the second stage takes a family from {rung.min_unique_share:.2%}): it "
        "could neither be selected nor join the second stage"
    )


def decide(
    entries: dict[str, RungEntry], references: RungReferences, rung: Rung, store: ArtifactStore
) -> list[RungDecision]:
    """Per screened unit, go on or stop: the whole family stops when ``family_verdict`` says so;
    else a unit stops when its family's best unit beats its best variant by more than
    ``margin_se`` standard errors of the difference."""
    metric = rung.metric
    best_of_unit = {unit: e.best(metric) for unit, e in entries.items() if e.results}
    best_unit_of_family: dict[str, str] = {}
    for unit, result in best_of_unit.items():  # the first of equals
        leader = best_unit_of_family.setdefault(result.family, unit)
        if result.metrics[metric] > best_of_unit[leader].metrics[metric]:
            best_unit_of_family[result.family] = unit
    verdicts = {
        family: family_verdict(entries[unit], references, rung, store)
        for family, unit in best_unit_of_family.items()
    }
    decisions = []
    for unit, mine in best_of_unit.items():
        best_unit = best_unit_of_family[mine.family]
        best = best_of_unit[best_unit]
        margin = gap_margin(rung.margin_se, metric, mine.metrics, best.metrics)
        value, best_value = mine.metrics[metric], best.metrics[metric]
        stopped_family = verdicts[mine.family]
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
