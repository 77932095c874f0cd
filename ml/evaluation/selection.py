"""Choosing among candidates on validation: the best of each family, their hybrid, the winner,
and the gate it must pass (beat every baseline)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from ml.artifacts import ArtifactStore
from ml.datasets.evaluation_split import EvaluationSplit
from ml.evaluation.candidates import CandidateResult, ScoredComponents, evaluate_lists
from ml.evaluation.metrics import paired_difference
from ml.evaluation.ranking import ranked
from ml.evaluation.report import markdown_code, table_rows
from ml.recommenders.base import Log, TopK, no_log
from ml.recommenders.hybrid import Hybrid, search_weights
from ml.recommenders.popularity import Popularity

# What a next-track run may select on: the top of the list the serving table holds (10 tracks),
# or the long list. hit_rate_at_100 breaks ties (MRR@100 breaks them when it is the metric).
SelectionMetric = Literal["ndcg_at_10", "hit_rate_at_10", "mrr_at_100", "hit_rate_at_100"]
SELECTION_METRICS: tuple[str, ...] = get_args(SelectionMetric)
# The gate: the selected model at least as good as every baseline on each of these.
GATE_METRICS = ("hit_rate_at_10", "hit_rate_at_100", "mrr_at_100")
# What people read beside each model: the summary, the tables, the version description.
REPORTED_METRICS = ("hit_rate_at_10", "hit_rate_at_100", "mrr_at_100", "ndcg_at_10")


def tiebreak_of(metric: str) -> str:
    return "mrr_at_100" if metric == "hit_rate_at_100" else "hit_rate_at_100"


def cutoff_of(metric: str) -> int:
    """The K of a metric named ``<name>_at_<K>``."""
    return int(metric.rsplit("_at_", 1)[1])


def next_track_ranked(results: list[CandidateResult], metric: str) -> list[CandidateResult]:
    """``metric`` first, hit rate@100 to break ties (MRR@100 when ``metric`` is hit rate@100)."""
    return ranked(results, metric, tiebreak_of(metric))


def finalists(results: list[CandidateResult], metric: str, most: int) -> list[CandidateResult]:
    """The best ``most`` candidates on the validation sample, less those more than two standard
    errors of a difference below the best on ``metric``: they cannot plausibly win on the whole
    split, and re-scoring each costs a pass over it."""
    ranking = next_track_ranked(results, metric)[:most]
    if not ranking:
        return []
    error = f"{metric}_stderr"
    best = ranking[0].metrics
    return [
        r
        for r in ranking
        if best[metric] - r.metrics[metric] <= 2 * (best[error] ** 2 + r.metrics[error] ** 2) ** 0.5
    ]


@dataclass(frozen=True)
class Lead:
    """How far one model's lists are ahead of a baseline's on one metric, on the same queries."""

    metric: str
    baseline: str
    difference: float  # the mean per-query difference
    error: float  # its standard error (paired)

    @property
    def standard_errors(self) -> float:
        if self.error > 0:
            return self.difference / self.error
        return math.inf if self.difference > 0 else -math.inf

    def __str__(self) -> str:
        return f"{self.metric} against {self.baseline}: {self.difference:+.4f} ± {self.error:.4f}"


def leads(
    top: TopK,
    baselines: dict[str, TopK],
    split: EvaluationSplit,
    n_items: int,
    metrics: Sequence[str],
) -> list[Lead]:
    """The lead of lists ``top`` over each baseline's (name -> lists, all for ``split``'s
    queries) on each of ``metrics``."""
    return [
        Lead(metric, name, *paired_difference(top.ids, other.ids, split.labels, n_items, metric))
        for metric in metrics
        for name, other in baselines.items()
    ]


def candidate_table(
    results: list[CandidateResult], metric: str, selected: str | None
) -> list[dict]:
    """The next-track table people read (next_track_candidate_metrics, the run summary,
    MLflow): every result in selection order, hit rate@10/20/100, MRR@100, NDCG@10 and @100,
    coverage@100, and the standard errors of ``metric`` and hit rate@100."""
    return table_rows(
        next_track_ranked(results, metric), 100, selected, errors_of=(metric, "hit_rate_at_100")
    )


def best_per_family(results: list[CandidateResult], metric: str) -> list[CandidateResult]:
    best: dict[str, CandidateResult] = {}
    for result in next_track_ranked([r for r in results if not r.baseline], metric):
        best.setdefault(result.family, result)
    return list(best.values())


def build_hybrid(
    components: ScoredComponents,
    validation: EvaluationSplit,
    popularity: Popularity,
    store: ArtifactStore,
    key: str,
    k: int,
    depth: int,
    ks: tuple[int, ...],
    log: Log = no_log,
) -> tuple[CandidateResult, TopK] | None:
    """Weights over the best candidate of each family (``components``, scored on
    ``validation``), searched there (hit rate@k, MRR@k breaking ties: ``k`` the selection
    metric's K), the hybrid saved as ``key`` in ``store``, with its lists on ``validation``
    (filled as ``evaluate``'s, ``max(ks)`` long); None when fewer than two families
    have a candidate or the search weighs all but one zero (the hybrid would rank exactly as that
    one model does). A component weighed zero is left out: it never changes the ranking, yet
    would be scored at every query and shipped in the bundle."""
    if len(components.models) < 2:
        return None
    started = time.perf_counter()
    models, lists = components.models, [t.head(max(depth, k)) for t in components.lists]
    weights, _ = search_weights(lists, validation.labels, popularity.n_items, k)
    searched = ", ".join(
        f"{w:g}*{c.name}" for c, w in zip(components.results, weights, strict=True)
    )
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
    metrics, filled = evaluate_lists(top, validation, popularity, ks)
    result = CandidateResult.of_second_stage(
        hybrid,
        model_key=key,
        metrics=metrics,
        fit_seconds=fit_seconds + sum(c.fit_seconds for c in components.results),
        eval_seconds=time.perf_counter() - started,
    )
    return result, filled


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


def shortfalls(
    result: CandidateResult,
    baselines: list[CandidateResult],
    metrics: Sequence[str],
    ties_pass: bool = True,
) -> list[tuple[str, str]]:
    """(metric, baseline name) for each metric on which ``result`` is below a baseline (or equal
    to it, unless ``ties_pass``)."""
    return [
        (metric, baseline.name)
        for metric in metrics
        for baseline in baselines
        if not (
            result.metrics[metric] > baseline.metrics[metric]
            or (ties_pass and result.metrics[metric] == baseline.metrics[metric])
        )
    ]


def first_meeting_baselines(
    ranking: list[CandidateResult],
    baselines: list[CandidateResult],
    metrics: Sequence[str],
    measured: Callable[[CandidateResult], CandidateResult] = lambda result: result,
) -> tuple[CandidateResult, list[str]]:
    """The first of ``ranking`` at least as good as every baseline on each of ``metrics`` (the
    gate's rule), and why each one before it was passed over. ``measured`` gives a result's
    figures on the queries the baselines were measured on (a re-scoring, for one measured on a
    sample), called only for results reached. When none meets them, the first: the gate then
    blocks it and says why."""
    passed_over = []
    for result in ranking:
        result = measured(result)
        missing = shortfalls(result, baselines, metrics)
        if not missing:
            return result, passed_over
        below = ", ".join(f"{metric} below {baseline}" for metric, baseline in missing)
        passed_over.append(f"{result.name}: {below}")
    return ranking[0], passed_over


def baseline_gate(
    selected: CandidateResult,
    baselines: list[CandidateResult],
    metrics: Sequence[str],
    floor: EvidenceFloor,
    ties_pass: bool,
) -> Gate:
    """The selected model must be better than every baseline on each of ``metrics`` (or equal,
    when ``ties_pass``), measured on at least ``floor.minimum`` queries. The description is
    Markdown (a Dagster check's): each model's name a code span, each figure with its standard
    error, the queries counted; a failing gate names each metric it fails and against which
    baseline, first."""
    queries = int(selected.metrics["queries"])
    rule = "at least as good as (a tie passes)" if ties_pass else "better than (a tie fails)"
    lines = [
        f"{markdown_code(selected.name)} on validation ({floor.queries}: {queries:,}), required "
        f"{rule} every baseline on {', '.join(metrics)}"
    ]
    passed = queries >= floor.minimum
    if not passed:
        lines.append(
            f"too few {floor.queries} to tell it from the baselines: {queries:,}, the minimum "
            f"is {floor.minimum:,} ({floor.setting})"
        )
    failures = [
        f"{metric} against {markdown_code(baseline)}"
        for metric, baseline in shortfalls(selected, baselines, metrics, ties_pass)
    ]
    figures = []
    for metric in metrics:
        mine = selected.metrics[metric]
        verdicts = []
        for baseline in baselines:
            theirs = baseline.metrics[metric]
            relation = "above" if mine > theirs else ("equal to" if mine == theirs else "below")
            verdicts.append(
                f"{relation} {markdown_code(baseline.name)} "
                f"({with_error(baseline.metrics, metric)})"
            )
        figures.append(f"{metric} {with_error(selected.metrics, metric)}: {', '.join(verdicts)}")
    if failures:
        passed = False
        lines.append(f"FAILS {', '.join(failures)}")
    return Gate(passed, "; ".join([*lines, *figures]))
