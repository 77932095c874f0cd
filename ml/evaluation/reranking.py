"""The reranker as a candidate: learned on the validation sample, scored out of sample.

Its figures must not come from queries it learned from. On the sample, each query is ranked by
the fold's ranker that did not see it (``Reranker.learn``); the rest of the validation split,
which it never saw, is ranked by the served ranker. The lists of both make one set of figures
over the whole validation split, comparable with every other candidate's.
"""

from __future__ import annotations

import time

import numpy as np

from ml.artifacts import ArtifactStore
from ml.catalogue import Catalogue
from ml.datasets.evaluation_split import EvaluationSplit
from ml.evaluation.candidates import CandidateResult, ScoredComponents, evaluate_lists
from ml.recommenders.base import CannotFit, ItemVectors, Log, TopK, no_log
from ml.recommenders.popularity import Popularity
from ml.recommenders.reranker import Reranker
from ml.sequences import Sequences


def build_reranker(
    components: ScoredComponents,
    *,
    train: Sequences,
    catalogue: Catalogue,
    validation: EvaluationSplit,
    sample_rows: np.ndarray,
    popularity: Popularity,
    store: ArtifactStore,
    key: str,
    ks: tuple[int, ...],
    depth: int,
    vectors: ItemVectors | None = None,
    log: Log = no_log,
) -> tuple[CandidateResult, TopK, Reranker] | None:
    """A reranker over ``components`` (fitted candidates and their lists for ``validation``'s
    ``sample_rows``, at least ``depth`` long), learned on those rows and saved as ``key`` in
    ``store``; its validation result with the filled lists it was measured on. ``vectors`` (else
    a component's) give the cosine features. None, with the reason logged, when it cannot
    learn."""
    if not components.models:
        return None
    started = time.perf_counter()
    reranker = Reranker.of(
        components.models, catalogue.artist_codes(), vectors, depth=max(depth, max(ks))
    )
    reranker.fit_statistics(train, log)
    try:
        learned = reranker.learn(components.lists, validation.take(sample_rows), log)
    except CannotFit as e:
        log(f"no reranker: {e}")
        return None
    fit_seconds = time.perf_counter() - started
    reranker.save(store.writable(key))
    store.commit(key)
    started = time.perf_counter()
    top = out_of_sample_lists(reranker, learned, validation, sample_rows, max(ks))
    metrics, filled = evaluate_lists(top, validation, popularity, ks)
    result = CandidateResult.of_second_stage(
        reranker,
        model_key=key,
        metrics=metrics,
        fit_seconds=fit_seconds + sum(c.fit_seconds for c in components.results),
        eval_seconds=time.perf_counter() - started,
    )
    return result, filled, reranker


def out_of_sample_lists(
    reranker: Reranker, learned: TopK, validation: EvaluationSplit, sample_rows: np.ndarray, k: int
) -> TopK:
    """Lists for every validation query: the out-of-fold ``learned`` lists on the sample rows,
    the served ranker's on the others."""
    ids = np.full((len(validation), k), -1, dtype=np.int32)
    scores = np.full((len(validation), k), -np.inf, dtype=np.float32)
    ids[sample_rows], scores[sample_rows] = learned.ids[:, :k], learned.scores[:, :k]
    rest = np.setdiff1d(np.arange(len(validation)), sample_rows)
    if len(rest):
        top = reranker.top_k(validation.take(rest).queries, k)
        ids[rest], scores[rest] = top.ids, top.scores
    return TopK(ids, scores)
