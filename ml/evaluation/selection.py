"""Choosing among candidates on validation: the best of each family, their hybrid, the winner,
and the gate it must pass (beat every baseline)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ml.artifacts import ArtifactStore
from ml.datasets.evaluation_split import EvaluationSplit
from ml.evaluation.candidates import CandidateResult, evaluate_lists
from ml.evaluation.ranking import ranked
from ml.evaluation.report import markdown_code
from ml.recommenders.base import Log, no_log
from ml.recommenders.hybrid import Hybrid, search_weights
from ml.recommenders.popularity import Popularity


def next_track_ranked(results: list[CandidateResult], k: int) -> list[CandidateResult]:
    """Hit rate@k first, MRR@k to break ties."""
    return ranked(results, f"hit_rate_at_{k}", f"mrr_at_{k}")


def finalists(results: list[CandidateResult], k: int, most: int) -> list[CandidateResult]:
    """The best ``most`` candidates on the validation sample, less those more than two standard
    errors of a difference below the best: they cannot plausibly win on the whole split, and
    re-scoring each costs a pass over it."""
    ranking = next_track_ranked(results, k)[:most]
    if not ranking:
        return []
    metric, error = f"hit_rate_at_{k}", f"hit_rate_at_{k}_stderr"
    best = ranking[0].metrics
    return [
        r
        for r in ranking
        if best[metric] - r.metrics[metric] <= 2 * (best[error] ** 2 + r.metrics[error] ** 2) ** 0.5
    ]


def best_per_family(results: list[CandidateResult], k: int) -> list[CandidateResult]:
    best: dict[str, CandidateResult] = {}
    for result in next_track_ranked([r for r in results if not r.baseline], k):
        best.setdefault(result.family, result)
    return list(best.values())


def build_hybrid(
    components: list[CandidateResult],
    validation: EvaluationSplit,
    popularity: Popularity,
    store: ArtifactStore,
    key: str,
    k: int,
    depth: int,
    ks: tuple[int, ...],
    log: Log = no_log,
) -> CandidateResult | None:
    """Weights over the best candidate of each family, searched on ``validation``, the hybrid
    saved as ``key`` in ``store``; None when fewer than two families have a candidate or the
    search weighs all but one zero (the hybrid would rank exactly as that one model does). A
    component weighed zero is left out: it never changes the ranking, yet would be scored at
    every query and shipped in the bundle."""
    if len(components) < 2:
        return None
    started = time.perf_counter()
    models = [c.load(store) for c in components]
    lists = [m.top_k(validation.queries, max(depth, k)) for m in models]
    weights, _ = search_weights(lists, validation.labels, popularity.n_items, k)
    searched = ", ".join(f"{w:g}*{c.name}" for c, w in zip(components, weights, strict=True))
    kept = [i for i, w in enumerate(weights) if w > 0]
    if len(kept) < 2:
        log(f"no hybrid: the weight search ({searched}) keeps one model alone")
        return None
    log(f"hybrid weights searched on {len(validation)} queries: {searched}")
    hybrid = Hybrid.of([models[i] for i in kept], [weights[i] for i in kept], max(depth, k))
    fit_seconds = time.perf_counter() - started
    hybrid.save(store.writable(key))
    store.commit(key)
    started = time.perf_counter()
    top = hybrid.top_k_of([lists[i] for i in kept], validation.queries, max(ks))
    metrics, _ = evaluate_lists(top, validation, popularity, ks)
    return CandidateResult.of_second_stage(
        hybrid,
        model_key=key,
        metrics=metrics,
        fit_seconds=fit_seconds + sum(c.fit_seconds for c in components),
        eval_seconds=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class Gate:
    passed: bool
    description: str


@dataclass(frozen=True)
class EvidenceFloor:
    """The fewest evaluation queries a gate may pass on: on fewer, no difference in a figure
    tells a model from a baseline."""

    minimum: int
    queries: str  # what a query is: "validation queries", "validation users"
    setting: str  # the run config field that sets the minimum


def with_error(metrics: dict[str, float], metric: str) -> str:
    error = metrics.get(f"{metric}_stderr")
    return f"{metrics[metric]:.4f}" + (f" ± {error:.4f}" if error is not None else "")


def beats_baselines(
    selected: CandidateResult, baselines: list[CandidateResult], metric: str, floor: EvidenceFloor
) -> Gate:
    """The selected model must be strictly better than every baseline on ``metric``, measured
    on at least ``floor.minimum`` queries. The description is Markdown (a Dagster check's): each
    model's name a code span, each figure with its standard error, the queries counted."""
    mine = selected.metrics[metric]
    queries = int(selected.metrics["queries"])
    lines = [
        f"{markdown_code(selected.name)} validation {metric} "
        f"{with_error(selected.metrics, metric)} ({floor.queries}: {queries:,})"
    ]
    passed = queries >= floor.minimum
    if not passed:
        lines.append(
            f"too few {floor.queries} to tell it from the baselines: {queries:,}, the minimum "
            f"is {floor.minimum:,} ({floor.setting})"
        )
    for baseline in baselines:
        theirs = baseline.metrics[metric]
        passed &= mine > theirs
        verdict = "beats" if mine > theirs else "does NOT beat"
        lines.append(
            f"{verdict} {markdown_code(baseline.name)} ({with_error(baseline.metrics, metric)})"
        )
    return Gate(passed, "; ".join(lines))
