"""The reranker as a candidate: learned on the validation sample, scored out of sample.

Its figures must not come from queries it learned from. On the sample, each query is ranked by
the fold's ranker that did not see it (``Reranker.learn``): its figures there are comparable with
every other candidate's, scored on the same sample. Should the selection need the finalists on
more of the validation split, the rest of it, which the reranker never saw, is ranked by the
served ranker (``on_validation``): the lists of both make one set of figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ml.artifacts import ArtifactStore
from ml.catalogue import Catalogue
from ml.datasets.evaluation_split import EvaluationSplit
from ml.evaluation.candidates import CandidateResult, ScoredComponents, evaluate_lists
from ml.recommenders.base import CannotFit, ItemVectors, Log, TopK, no_log
from ml.recommenders.popularity import Popularity
from ml.recommenders.reranker import Reranker
from ml.sequences import Sequences


@dataclass(frozen=True)
class LearnedReranker:
    result: CandidateResult  # its figures on the validation sample, out of fold
    top: TopK  # the filled lists they were measured on
    model: Reranker
    learned: TopK  # its out-of-fold lists for the sample's queries, unfilled


def build_reranker(
    components: ScoredComponents,
    *,
    train: Sequences,
    catalogue: Catalogue,
    sample: EvaluationSplit,
    popularity: Popularity,
    store: ArtifactStore,
    key: str,
    ks: tuple[int, ...],
    depth: int,
    vectors: ItemVectors | None = None,
    log: Log = no_log,
) -> LearnedReranker | None:
    """A reranker over ``components`` (fitted candidates and their lists for the validation
    ``sample``, at least ``depth`` long), learned on the sample and saved as ``key`` in
    ``store``, with its out-of-fold figures there. ``vectors`` (else a component's) give the
    cosine features. None, with the reason logged, when it cannot learn."""
    if not components.models:
        return None
    started = time.perf_counter()
    reranker = Reranker.of(
        components.models, catalogue.artist_codes(), vectors, depth=max(depth, max(ks))
    )
    reranker.fit_statistics(train, log)
    try:
        learned = reranker.learn(components.lists, sample, log)
    except CannotFit as e:
        log(f"no reranker: {e}")
        return None
    fit_seconds = time.perf_counter() - started
    reranker.save(store.writable(key))
    store.commit(key)
    started = time.perf_counter()
    metrics, filled = evaluate_lists(learned.head(max(ks)), sample, popularity, ks)
    result = CandidateResult.of_second_stage(
        reranker,
        model_key=key,
        metrics=metrics,
        fit_seconds=fit_seconds + sum(c.fit_seconds for c in components.results),
        eval_seconds=time.perf_counter() - started,
    )
    return LearnedReranker(result, filled, reranker, learned)


def on_validation(
    learned: LearnedReranker,
    validation: EvaluationSplit,
    sample_rows: np.ndarray,
    popularity: Popularity,
    ks: tuple[int, ...],
) -> tuple[dict[str, float], TopK]:
    """The reranker's figures and filled lists on all of ``validation``, whose ``sample_rows``
    it learned on: out of fold there, the served ranker's elsewhere."""
    top = out_of_sample_lists(learned.model, learned.learned, validation, sample_rows, max(ks))
    return evaluate_lists(top, validation, popularity, ks)


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
