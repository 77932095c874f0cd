"""The next-track selection on validation: a second stage (reranker, hybrid) over each family's
best, the finalists re-scored on the whole split unless the sample already decides, the first
at least as good as every baseline selected; its table and plots. Then the selected model on
test beside the baselines."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ml.artifacts import ArtifactStore
from ml.datasets.evaluation_split import EvaluationSplit
from ml.datasets.next_track import NextTrackData
from ml.evaluation.candidates import (
    CandidateResult,
    ScoredComponents,
    evaluate,
    evaluate_lists,
)
from ml.evaluation.metrics import hit_rate_curve, metrics_by_query_length
from ml.evaluation.report import (
    plot_by_query_length,
    plot_feature_importances,
    plot_hit_rate_curves,
    plot_validation_bars,
    query_length_rows,
)
from ml.evaluation.reranking import build_reranker, on_validation
from ml.evaluation.selection import (
    GATE_METRICS,
    REPORTED_METRICS,
    best_per_family,
    build_hybrid,
    candidate_table,
    cutoff_of,
    finalists,
    first_meeting_baselines,
    leads,
    next_track_ranked,
)
from ml.recommenders.base import Log, Recommender, TopK, no_log, started
from ml.recommenders.hybrid import Hybrid
from ml.recommenders.popularity import Popularity
from ml.sequences import Sequences

# The hit rates, MRRs and NDCGs every next-track candidate is measured at.
METRIC_KS = (1, 5, 10, 20, 50, 100)
# How far (standard errors of the paired difference) the one finalist must lead every baseline
# on the validation sample for the selection not to re-score it and them on more queries.
DECIDING_MARGIN_SE = 2.0
# How far (standard errors of the paired difference on the sample) the best may lead another
# finalist for that one still to be re-scored beside it.
FINALIST_MARGIN_SE = 2.0
# name -> file of each plot the selection writes.
PLOT_FILES = {
    "reranker_feature_importance": "reranker_gain.png",
    "hit_rate_at_k": "validation_hit_rate_at_k.png",
    "validation": "validation.png",
}


@dataclass(frozen=True, kw_only=True)
class SecondStage:
    """How the second stage is built over each family's best (the run config's selection)."""

    hybrid: bool
    hybrid_depth: int
    reranker: bool
    reranker_depth: int
    min_unique_share: float  # a family's list alone must find this share of labels
    finalists: int  # re-scored on the finalist sample, unless the validation sample decides
    min_queries: int  # the gate's floor: the sample decides only from this many queries


@dataclass(frozen=True, kw_only=True)
class NextTrackSelection:
    selected: CandidateResult
    baselines: list[CandidateResult]  # on the queries the selected model was compared on
    results: list[CandidateResult]  # every candidate, baseline and second-stage model
    rows: list[dict]  # the validation table
    plots: list[str]  # the names (PLOT_FILES) of the plots written
    passed_over: list[str]  # why each better-ranked candidate was not selected
    measured_on: int  # validation queries the selected model and the baselines were compared on
    sample_decided: bool  # whether the sample decided, with nothing re-scored (``sample_decides``)
    components: dict  # the second stage's families: kept, and each one's unique label share


def select_next_track(
    results: list[CandidateResult],
    data: NextTrackData,
    sample_rows: np.ndarray,
    *,
    metric: str,
    second_stage: SecondStage,
    store: ArtifactStore,
    key: Callable[[str], str],
    plot_path: Callable[[str], Path],
    log: Log = no_log,
) -> NextTrackSelection:
    """Selects among ``results`` (the grid's, scored on ``data.validation``'s ``sample_rows``)
    on ``metric``; the finalists and the baselines are re-scored on all of ``data.validation``
    unless the sample already decides (``sample_decides``). Models are saved under
    ``key(name)`` in ``store``, plots at ``plot_path(name)``."""
    results = list(results)
    popularity = Popularity.from_counts(data.catalogue.train_counts)
    sample = data.validation.take(sample_rows)
    s = second_stage
    sample_tops: dict[tuple[str, str], TopK] = {}  # filled lists on the sample
    on_validation_of: dict[tuple[str, str], Callable[[], tuple[dict[str, float], TopK]]] = {}
    plots = []
    depths = [s.hybrid_depth] * s.hybrid + [s.reranker_depth] * s.reranker
    best = ScoredComponents.of(
        best_per_family(results, metric) if depths else [],  # scored only if used
        store,
        sample,
        max([*depths, *METRIC_KS]),
    )
    components = best.contributing(sample.labels, len(data.catalogue), s.min_unique_share, log)
    # The hybrid's search beside the reranker's learning: neither reads the other.
    hybrid_built = (
        started(
            partial(
                build_hybrid,
                components,
                sample,
                popularity,
                store,
                key("hybrid"),
                cutoff_of(metric),
                s.hybrid_depth,
                METRIC_KS,
                log,
            )
        )
        if s.hybrid
        else None
    )
    if s.reranker:
        built = build_reranker(
            components,
            train=data.train,
            catalogue=data.catalogue,
            sample=sample,
            popularity=popularity,
            store=store,
            key=key("reranker"),
            ks=METRIC_KS,
            depth=s.reranker_depth,
            vectors=best.item_vectors(),
            log=log,
        )
        if built is not None:
            results.append(built.result)
            sample_tops[_key(built.result)] = built.top
            on_validation_of[_key(built.result)] = partial(
                on_validation, built, data.validation, sample_rows, popularity, METRIC_KS
            )
            plots.append("reranker_feature_importance")
            plot_feature_importances(built.model.importances(), plot_path(plots[-1]))
    if hybrid_built is not None:
        built_hybrid = hybrid_built.result()
        if built_hybrid is not None:
            hybrid, sample_tops[_key(built_hybrid[0])] = built_hybrid
            log(f"hybrid {hybrid.name}: {metric} {hybrid.metrics[metric]:.4f}")
            results.append(hybrid)

    def on_sample(result: CandidateResult) -> TopK:
        if _key(result) not in sample_tops:
            kept = result.scored_lists(store, len(sample), max(METRIC_KS))
            _, sample_tops[_key(result)] = (
                evaluate(result.load(store), sample, popularity, METRIC_KS)
                if kept is None
                else evaluate_lists(kept, sample, popularity, METRIC_KS)
            )
        return sample_tops[_key(result)]

    n_items, sampled = len(data.catalogue), len(sample) < len(data.validation)
    contenders = finalists([r for r in results if not r.baseline], metric, s.finalists)
    if sampled:  # more queries are at stake: only the finalists close to the best on the sample
        contenders = close_on_sample(contenders, sample, on_sample, n_items, metric, log)
    baselines = [r for r in results if r.baseline]
    split, tops = data.validation, {}
    decided = (
        sampled
        and len(sample) >= s.min_queries
        and sample_decides(contenders, baselines, sample, on_sample, n_items, log)
    )
    if decided or not sampled:
        split, tops = sample, sample_tops

    def measured(result: CandidateResult) -> CandidateResult:
        """``result`` with its figures on ``split``: re-scored there if it was on the sample."""
        if split is not sample and _key(result) not in tops:
            began = time.perf_counter()
            rescore = on_validation_of.get(_key(result)) or partial(
                evaluate, result.load(store), split, popularity, METRIC_KS
            )
            result.metrics, tops[_key(result)] = rescore()
            result.eval_seconds = time.perf_counter() - began
            log(
                f"re-scored {result.name} on {len(split):,} validation queries: "
                f"{metric} {result.metrics[metric]:.4f} in {result.eval_seconds:.0f} s"
            )
        return result

    baselines = [measured(r) for r in baselines]
    for result in contenders:
        measured(result)
    # Finalists first; should none be at least as good as both baselines, the other candidates
    # in order (the grid's plain last-track rule ties that baseline).
    finalist_names = {r.name for r in contenders}
    others = [r for r in results if not r.baseline and r.name not in finalist_names]
    ranking = next_track_ranked(contenders, metric) + next_track_ranked(others, metric)
    selected, passed_over = first_meeting_baselines(ranking, baselines, GATE_METRICS, measured)
    for reason in passed_over:
        log(f"passed over, not at least as good as every baseline: {reason}")
    curves = {}
    for result in [selected, *baselines]:
        top = on_sample(result) if split is sample else tops[_key(result)]
        curves[result.name] = hit_rate_curve(top.ids, split.labels, len(data.catalogue))
    rows = candidate_table(results, metric, selected.name)
    title = "validation hit rate@K: selected model and baselines"
    plot_hit_rate_curves(curves, plot_path("hit_rate_at_k"), title)
    plot_validation_bars(rows, metric, plot_path("validation"))
    return NextTrackSelection(
        selected=selected,
        baselines=baselines,
        results=results,
        rows=rows,
        plots=[*plots, "hit_rate_at_k", "validation"],
        passed_over=passed_over,
        measured_on=len(split),
        sample_decided=decided,
        components={
            "kept": [r.name for r in components.results],
            "unique_label_share": [  # best family first (a list keeps the order)
                {"candidate": name, "share": share}
                for name, share in components.unique_shares.items()
            ],
        },
    )


def _key(result: CandidateResult) -> tuple[str, str]:
    """A result's lists: its name alone is not enough (a baseline and a grid candidate can share
    one), nor its model (a model's scoring variants share it)."""
    return result.model_key, result.name


def searched_on_sample(result: CandidateResult) -> bool:
    """Whether ``result``'s figures on the validation sample are in-sample: the hybrid's weights
    are searched there (the reranker's figures there are out of fold)."""
    return result.family == Hybrid.family


def close_on_sample(
    contenders: list[CandidateResult],
    sample: EvaluationSplit,
    lists_of: Callable[[CandidateResult], TopK],
    n_items: int,
    metric: str,
    log: Log = no_log,
) -> list[CandidateResult]:
    """The best of ``contenders`` (best first) and those of the others it does not lead on
    ``metric`` by over ``FINALIST_MARGIN_SE`` standard errors of the paired difference on the
    sample. ``finalists`` takes each side's own standard error, as if the lists were scored on
    different queries; on the same queries what both lists find alike cancels out, so the
    paired error is the smaller and the fairer one. A hybrid in the lead drops no one: its
    weights were searched on the sample, so its lead there is biased upward."""
    if len(contenders) < 2 or searched_on_sample(contenders[0]):
        return contenders
    best, *others = contenders
    close = [best]
    for other in others:
        (lead,) = leads(lists_of(best), {other.name: lists_of(other)}, sample, n_items, [metric])
        if lead.standard_errors <= FINALIST_MARGIN_SE:
            close.append(other)
        else:
            log(
                f"{other.name} is no finalist: {best.name} leads it on the sample by "
                f"{lead.standard_errors:.1f} standard errors of the paired difference ({lead})"
            )
    return close


def sample_decides(
    contenders: list[CandidateResult],
    baselines: list[CandidateResult],
    sample: EvaluationSplit,
    lists_of: Callable[[CandidateResult], TopK],
    n_items: int,
    log: Log = no_log,
) -> bool:
    """Whether the validation sample alone decides the selection: one finalist, whose figures
    there were not fitted on it (the hybrid's weights are searched on the sample; the
    reranker's figures are out of fold), ahead of every baseline on each gate metric by more
    than ``DECIDING_MARGIN_SE`` standard errors of the paired difference there. More queries
    would then be unlikely to change what is selected or whether it passes the gate; they would
    narrow its figures' error bars."""
    if len(contenders) != 1 or not baselines or searched_on_sample(contenders[0]):
        return False
    (only,) = contenders
    found = leads(
        lists_of(only), {b.name: lists_of(b) for b in baselines}, sample, n_items, GATE_METRICS
    )
    close = [str(lead) for lead in found if lead.standard_errors <= DECIDING_MARGIN_SE]
    if close:
        log(f"{only.name} is not clearly ahead on the sample ({'; '.join(close)}): re-scoring")
        return False
    closest = min(found, key=lambda lead: lead.standard_errors)
    log(
        f"the sample decides: {only.name}, the one finalist, is ahead of every baseline on "
        f"{', '.join(GATE_METRICS)} by over {DECIDING_MARGIN_SE:g} standard errors on its "
        f"{len(sample):,} queries (the closest: {closest}, {closest.standard_errors:.1f} "
        "standard errors); the finalists are not re-scored on more"
    )
    return True


@dataclass(frozen=True, kw_only=True)
class TestFigures:
    metrics: dict[str, dict[str, float]]  # name -> test metrics (selected and baselines)
    by_query_length: list[dict]  # the table by query length (1-2, 3-5, 6-10, 11+ tracks)
    selected: Recommender  # the first model, as scored on test: refit, when asked
    refit: dict[str, float]  # what the refit learned from and took; empty without one


def score_on_test(
    models: list[CandidateResult],
    data: NextTrackData,
    store: ArtifactStore,
    plot: Path,
    *,
    refit: bool,
    log: Log = no_log,
) -> TestFigures:
    """Each of ``models`` scored once on test, also by query length (the table, and its hit
    rate@10 plot at ``plot``). With ``refit``, each first learns again from train + validation
    with what validation chose: a family refits with its params; a second stage keeps what it
    learned on validation (the ranker, the hybrid's weights) and refits its components."""
    popularity = Popularity.from_counts(data.catalogue.train_counts)
    test: EvaluationSplit = data.test
    train = data.train_and_validation() if refit else None
    if train is not None:
        log(
            f"refitting on train + validation: {len(train.sequences):,} playlists; "
            f"{train.dropped_plays:,} validation plays of tracks train never saw left out"
        )
    metrics, by_length, refit_seconds = {}, {}, 0.0
    selected, refitted = None, []
    for result in models:
        model = result.load(store)
        if train is not None:
            began = time.perf_counter()
            model = refit_model(model, train.sequences, refitted, log)
            refit_seconds += time.perf_counter() - began
        if selected is None:  # the first; the baselines' models are let go once scored
            selected, refitted = model, model.fitted_models()
        metrics[result.name], top = evaluate(model, test, popularity, METRIC_KS)
        by_length[result.name] = metrics_by_query_length(
            top.ids, test.queries.history, test.labels, len(data.catalogue), METRIC_KS
        )
    rows = query_length_rows(by_length, REPORTED_METRICS)
    plot_by_query_length(rows, "hit_rate_at_10", plot)
    facts = {}
    if train is not None:
        facts = {
            "refit_playlists": float(len(train.sequences)),
            "refit_dropped_plays": float(train.dropped_plays),
            "refit_seconds": refit_seconds,
        }
    return TestFigures(metrics=metrics, by_query_length=rows, selected=selected, refit=facts)


def refit_model(
    model: Recommender, train: Sequences, refitted: list[Recommender], log: Log = no_log
) -> Recommender:
    """``model`` fitted again on ``train``; or, when one of ``refitted`` has its family and fit
    (a baseline that is also a component of the selected model), that fit ranking as ``model``
    does: the same model, without fitting it twice."""
    for other in refitted:
        if other.family == model.family and other.params.fit_name == model.params.fit_name:
            log(f"{model.name}: shares the refit of {other.name}")
            return other.with_scoring(**model.scoring_params())
    model.fit(train, log)
    return model
