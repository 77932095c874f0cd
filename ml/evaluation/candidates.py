"""Candidates: one unit of work per family x fit hyperparameters, evaluated with every scoring
variant on a validation split. Plain Python: Dagster runs each unit as its own step.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from ml.artifacts import ArtifactStore
from ml.datasets.evaluation_split import EvaluationSplit
from ml.evaluation.metrics import DEFAULT_KS, ranking_metrics, warm_and_popularity_metrics
from ml.recommenders.base import (
    CannotFit,
    FitInputs,
    ItemVectors,
    Log,
    Recommender,
    TopK,
    first_item_vectors,
    no_log,
    parse_params,
    scoring_fields,
)
from ml.recommenders.families import create, family_class, load_recommender
from ml.recommenders.popularity import Popularity
from ml.sequences import Sequences
from ml.sorted_sets import isin, unique


@dataclass(frozen=True)
class CandidateSpec:
    """A family, its fit hyperparameters, and the scoring variants to try on the fitted model."""

    family: str
    params: dict[str, Any] = field(default_factory=dict)
    variants: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    baseline: bool = False
    # Units whose cost grows faster than the data run only up to this many train rows; beyond,
    # they are skipped with the reason logged (None: always run).
    max_train_rows: int | None = None
    # Units meant for large data (fewer epochs, say) run only from this many train rows on.
    min_train_rows: int | None = None
    label: str | None = None  # tells apart units of one fit with different variant sets

    def recommender(self, n_items: int) -> Recommender:
        return create(self.family, self.params, n_items)

    def size_refusal(self, train_rows: int) -> str | None:
        """Why this unit does not run on a train split of ``train_rows`` rows, if it does not."""
        if self.max_train_rows is not None and train_rows > self.max_train_rows:
            return (
                f"{train_rows:,} train rows > max_train_rows {self.max_train_rows:,}: this "
                "unit costs too much at this size; raise max_train_rows to run it anyway"
            )
        if self.min_train_rows is not None and train_rows < self.min_train_rows:
            return (
                f"{train_rows:,} train rows < min_train_rows {self.min_train_rows:,}: this unit "
                "is the grid's cheaper setting for large data; smaller data trains the fuller one"
            )
        return None

    def validate(self) -> None:
        """Refuse bad hyperparameters before any work, naming the field."""
        cls = family_class(self.family)
        base = parse_params(cls.Params, self.params)
        allowed = scoring_fields(cls.Params)
        for variant in self.variants:
            extra = set(variant) - allowed
            if extra:
                raise ValueError(
                    f"{self.family}: variants may only set {sorted(allowed)}, not {sorted(extra)}"
                )
            parse_params(cls.Params, {**TypeAdapter(cls.Params).dump_python(base), **variant})

    @property
    def unit_name(self) -> str:
        """Names the fitted model (shared by its variants); safe as a Dagster mapping key."""
        params = parse_params(family_class(self.family).Params, self.params)
        prefix = "baseline__" if self.baseline else ""
        suffix = f"__{self.label}" if self.label else ""
        name = f"{prefix}{self.family}__{params.fit_name}{suffix}"
        return re.sub(r"[^A-Za-z0-9_]", "_", name)


@dataclass
class CandidateResult:
    """One row of the validation table."""

    name: str  # family:params
    family: str
    unit: str
    params: dict[str, Any]  # every hyperparameter, scoring variant included
    variant: dict[str, Any]
    model_key: str  # the fitted model in an ArtifactStore
    metrics: dict[str, float]
    fit_seconds: float
    eval_seconds: float
    baseline: bool = False
    facts: dict[str, float] = field(default_factory=dict)  # vocabulary size, rules...
    # Its unfilled lists for the queries it was scored on, in the same ArtifactStore.
    lists_key: str | None = None

    @classmethod
    def of_second_stage(
        cls,
        model: Recommender,
        *,
        model_key: str,
        metrics: dict[str, float],
        fit_seconds: float,
        eval_seconds: float,
    ) -> CandidateResult:
        """The row of a model built over fitted candidates (the hybrid, the reranker): its
        unit is its family, its fit seconds include its components'."""
        return cls(
            name=model.name,
            family=model.family,
            unit=model.family,
            params=TypeAdapter(model.Params).dump_python(model.params, mode="json"),
            variant={},
            model_key=model_key,
            metrics=metrics,
            fit_seconds=fit_seconds,
            eval_seconds=eval_seconds,
            facts=dict(model.training),
        )

    def load(self, store: ArtifactStore) -> Recommender:
        model = load_recommender(store.stage(self.model_key))
        return model.with_scoring(**self.variant) if self.variant else model

    def scored_lists(self, store: ArtifactStore, queries: int, depth: int) -> TopK | None:
        """The lists it was scored with, ``depth`` long, if they were kept for ``queries``
        queries and are that deep: the caller scores the same queries (one validation sample
        per run, ``DatasetHandle.sampled_validation``)."""
        if self.lists_key is None:
            return None
        top = TopK.load(store.stage(self.lists_key))
        if len(top) != queries or top.ids.shape[1] < depth:
            return None
        return top.head(depth)


def unique_label_shares(lists: list[TopK], labels: Sequences, n_items: int) -> list[float]:
    """Per list, the share of queries with a relevant item that it holds and no other list
    does: what a pool of these lists would lose without it."""
    wanted = labels.known_item_keys(n_items)
    found = []
    for top in lists:
        keys = top.item_keys(n_items)
        found.append(unique(keys[isin(keys, wanted)]))
    shares = []
    for j, mine in enumerate(found):
        others = [f for i, f in enumerate(found) if i != j]
        alone = np.setdiff1d(mine, np.concatenate(others)) if others else mine
        shares.append(len(unique(alone // n_items)) / max(len(labels), 1))
    return shares


@dataclass(frozen=True)
class ScoredComponents:
    """The best candidate of each family, loaded, with its lists for a set of queries: what the
    hybrid and the reranker both build on, loaded and scored once."""

    results: list[CandidateResult]
    models: list[Recommender]
    lists: list[TopK]  # per model, ``depth`` long
    # every family's share of queries with a relevant item its list alone holds (contributing)
    unique_shares: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        results: list[CandidateResult],
        store: ArtifactStore,
        split: EvaluationSplit,
        depth: int,
    ) -> ScoredComponents:
        models = [r.load(store) for r in results]
        lists = []
        for result, model in zip(results, models, strict=True):
            kept = result.scored_lists(store, len(split), depth)
            lists.append(model.top_k(split.queries, depth) if kept is None else kept)
        return cls(results, models, lists)

    def unique_label_shares(self, labels: Sequences, n_items: int) -> list[float]:
        return unique_label_shares(self.lists, labels, n_items)

    def contributing(
        self, labels: Sequences, n_items: int, min_share: float, log: Log = no_log
    ) -> ScoredComponents:
        """The components whose lists hold a relevant item no other kept list does for at least
        ``min_share`` of the queries, the first (best) one always: another would be scored at
        every query, and served, for labels the others already find. Two lists finding the same
        items would each look redundant beside the other, so the one adding least leaves first
        and the shares are measured again without it, until every one left adds enough."""
        kept = list(range(len(self.results)))
        shares: dict[int, float] = {}  # a left-out list's share when it left
        while True:
            now = unique_label_shares([self.lists[i] for i in kept], labels, n_items)
            shares.update(zip(kept, now, strict=True))
            below = [i for i in kept[1:] if shares[i] < min_share]
            if not below:
                break
            kept.remove(min(below, key=lambda i: (shares[i], -i)))  # a tie: the later goes
        said = ", ".join(f"{r.name} {shares[i]:.2%}" for i, r in enumerate(self.results))
        if said:
            log(f"relevant items only one component proposes (share of queries): {said}")
        left_out = [r.name for i, r in enumerate(self.results) if i not in kept]
        if left_out:
            log(f"left out of the hybrid and the reranker, under {min_share:.2%}: {left_out}")
        return ScoredComponents(
            [self.results[i] for i in kept],
            [self.models[i] for i in kept],
            [self.lists[i] for i in kept],
            {r.name: shares[i] for i, r in enumerate(self.results)},
        )

    def item_vectors(self) -> ItemVectors | None:
        return first_item_vectors(self.models)


def evaluate(
    recommender: Recommender,
    split: EvaluationSplit,
    popularity: Popularity,
    ks: tuple[int, ...] = DEFAULT_KS,
) -> tuple[dict[str, float], TopK]:
    """Metrics of ``recommender`` on ``split``, its lists filled from popularity as served."""
    return evaluate_lists(recommender.top_k(split.queries, max(ks)), split, popularity, ks)


def evaluate_lists(
    top: TopK, split: EvaluationSplit, popularity: Popularity, ks: tuple[int, ...] = DEFAULT_KS
) -> tuple[dict[str, float], TopK]:
    """``evaluate`` of lists already ranked for ``split``'s queries."""
    filled, was_filled = popularity.fill(top, split.queries)
    metrics = ranking_metrics(filled.ids, split.labels, popularity.n_items, ks)
    metrics |= warm_and_popularity_metrics(filled.ids, split.labels, popularity.counts, ks)
    metrics["filled_share"] = float(was_filled.mean())
    return metrics, filled


@dataclass(frozen=True, kw_only=True)
class UnitData:
    """What a grid unit of either use case fits on and is scored against: the fit's inputs, the
    validation split, and how a variant's lists become its validation figures."""

    inputs: FitInputs
    validation: EvaluationSplit
    n_items: int
    score: Callable[[TopK], dict[str, float]]  # a variant's figures from its lists
    depth: int  # how long a list is scored
    headline: str  # the figure each variant's log line shows

    @classmethod
    def next_track(
        cls,
        train: Sequences,
        validation: EvaluationSplit,
        popularity: Popularity,
        ks: tuple[int, ...] = DEFAULT_KS,
    ) -> UnitData:
        """Next-track: lists filled from popularity as served, scored at every cut-off."""
        return cls(
            inputs=FitInputs(train=train),
            validation=validation,
            n_items=popularity.n_items,
            score=lambda top: evaluate_lists(top, validation, popularity, ks)[0],
            depth=max(ks),
            headline=f"hit_rate_at_{max(ks)}",
        )


@dataclass(frozen=True)
class ScoredVariant:
    model: Recommender  # the fitted model with the variant's scoring
    variant: dict[str, Any]
    metrics: dict[str, float]
    top: TopK  # its unfilled lists for the validation queries
    seconds: float


@dataclass(frozen=True)
class FittedUnit:
    model: Recommender
    fit_seconds: float

    @property
    def facts(self) -> dict[str, float]:
        return {k: v for k, v in self.model.training.items() if isinstance(v, float)}


def fit_unit(spec: CandidateSpec, data: UnitData, log: Log = no_log) -> FittedUnit:
    """``spec``'s model fitted once on ``data``."""
    model = spec.recommender(data.n_items)
    started = time.perf_counter()
    model.fit_inputs(data.inputs, log)
    fit_seconds = time.perf_counter() - started
    log(f"{spec.unit_name}: fitted in {fit_seconds:.1f} s; scoring {len(spec.variants)} variants")
    return FittedUnit(model, fit_seconds)


def scored_variants(
    unit: FittedUnit, spec: CandidateSpec, data: UnitData, log: Log = no_log
) -> Iterator[ScoredVariant]:
    """Each of ``spec``'s scoring variants of the fitted model scored on ``data``'s validation
    split, one at a time: a caller keeps the lists it needs, not every variant's at once."""
    seconds_so_far = 0.0
    for done, variant in enumerate(spec.variants, start=1):
        view = unit.model.with_scoring(**variant) if variant else unit.model
        started = time.perf_counter()
        top = view.top_k(data.validation.queries, data.depth)
        metrics = data.score(top)
        seconds = time.perf_counter() - started
        seconds_so_far += seconds
        left = seconds_so_far / done * (len(spec.variants) - done)
        log(
            f"{view.name}: {data.headline} {metrics[data.headline]:.4f} "
            f"({done}/{len(spec.variants)}, {len(data.validation) / seconds:,.0f} queries/s, "
            f"~{left:.0f} s left)"
        )
        yield ScoredVariant(view, dict(variant), metrics, top, seconds)


def run_unit(
    spec: CandidateSpec, data: UnitData, store: ArtifactStore, prefix: str, log: Log = no_log
) -> list[CandidateResult]:
    """A grid unit of either use case: fit once, save as ``<prefix>/<unit>`` in ``store``,
    score every variant and keep its lists (the second stage builds on them). Raises
    ``CannotFit`` when the family cannot, or when the train split is outside the unit's
    ``min_train_rows``..``max_train_rows``."""
    refusal = spec.size_refusal(len(data.inputs.train.items))
    if refusal:
        raise CannotFit(refusal)
    unit = fit_unit(spec, data, log)
    model_key = f"{prefix}/{spec.unit_name}"
    unit.model.save(store.writable(model_key))
    store.commit(model_key)
    results = []
    for done, scored in enumerate(scored_variants(unit, spec, data, log), start=1):
        lists_key = f"{model_key}__lists/{done}"
        scored.top.save(store.writable(lists_key))
        store.commit(lists_key)
        results.append(
            CandidateResult(
                name=scored.model.name,
                family=spec.family,
                unit=spec.unit_name,
                params=refit_params(scored.model),
                variant=scored.variant,
                model_key=model_key,
                metrics=scored.metrics,
                fit_seconds=unit.fit_seconds,
                eval_seconds=scored.seconds,
                baseline=spec.baseline,
                facts=unit.facts,
                lists_key=lists_key,
            )
        )
    return results


def results_of_the_same_fit(
    spec: CandidateSpec, results: list[CandidateResult]
) -> list[CandidateResult] | None:
    """``spec``'s results (one per variant, marked as ``spec`` is) taken from ``results`` of the
    same family with every param equal, fit and scoring; None when a variant has none. The
    caller vouches that ``results`` were fitted in full on the same train split and scored on
    the same queries: ``spec``'s own unit would find the same model and figures."""
    same_family = [r for r in results if r.family == spec.family]
    model = spec.recommender(0)  # names and params only: nothing is fitted
    found = []
    for variant in spec.variants:
        params = refit_params(model.with_scoring(**variant) if variant else model)
        match = next((r for r in same_family if r.params == params), None)
        if match is None:
            return None
        found.append(replace(match, baseline=spec.baseline))
    return found


def refit_params(model: Recommender) -> dict[str, Any]:
    """The params that retrain ``model`` on more data (for a two-tower that stopped early: as
    many epochs as it kept), every scoring variant's included."""
    params = model.refit_params()
    return TypeAdapter(type(params)).dump_python(params, mode="json")
