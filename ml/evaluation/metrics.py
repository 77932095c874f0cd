"""Ranking metrics for top-K lists against the relevant items of each query.

Next-track has one relevant item per query (the hidden last track); user-items has a set (a
user's test interactions). With relevant set R and a hit at 1-based rank r:
hit rate@K = 1 if any hit in the top K; recall@K = hits / |R|; MRR@K = 1 / first hit rank;
NDCG@K = sum over hits of 1/log2(r+1), divided by the ideal sum over min(|R|, K) ranks.
Each comes with the standard error of its mean over queries (``<metric>_stderr``).
With one relevant item, recall equals hit rate and NDCG is 1/log2(r+1). Coverage@K is the share
of the catalogue that appears in at least one top-K list.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.sequences import UNKNOWN, Sequences
from ml.sorted_sets import isin, unique

DEFAULT_KS = (10, 20, 100)


def relevance(top_ids: np.ndarray, labels: Sequences, n_items: int) -> np.ndarray:
    """(n, k) bool: whether each recommended item is one of its query's relevant items."""
    if len(top_ids) != len(labels):
        raise ValueError(f"{len(top_ids)} recommendation lists for {len(labels)} label sets")
    label_keys = labels.known_item_keys(n_items)
    rows = np.arange(len(top_ids), dtype=np.int64)[:, None]
    keys = rows * n_items + top_ids
    return isin(keys, label_keys) & (top_ids != UNKNOWN)


def ranking_metrics(
    top_ids: np.ndarray, labels: Sequences, n_items: int, ks: tuple[int, ...] = DEFAULT_KS
) -> dict[str, float]:
    """Mean metrics at each K over queries with at least one label (unknown labels count: a
    label the model cannot know is a miss, not a query left out)."""
    if len(labels) == 0:
        raise ValueError("no queries to evaluate")
    if top_ids.shape[1] < max(ks):
        raise ValueError(f"lists have {top_ids.shape[1]} items; metrics need {max(ks)}")
    relevant = relevance(top_ids, labels, n_items)
    n_relevant = labels.lengths.astype(np.float64)
    if (n_relevant == 0).any():
        raise ValueError("every query needs at least one label")
    metrics: dict[str, float] = {"queries": float(len(labels))}
    for k in ks:
        for name, values in _per_query(relevant, n_relevant, k).items():
            metrics[f"{name}_at_{k}"] = float(values.mean())
            # Of the mean over queries: for a hit rate, the binomial sqrt(p (1 - p) / n).
            metrics[f"{name}_at_{k}_stderr"] = float(values.std() / np.sqrt(len(values)))
        shown = top_ids[:, :k]
        metrics[f"coverage_at_{k}"] = (
            len(unique(shown[shown != UNKNOWN])) / n_items if n_items else 0.0
        )
    return metrics


def _per_query(relevant: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Each query's hit rate, recall, MRR and NDCG at ``k``."""
    discount = 1.0 / np.log2(np.arange(2, relevant.shape[1] + 2))
    hits = relevant[:, :k]
    any_hit = hits.any(axis=1)
    first = np.where(any_hit, hits.argmax(axis=1) + 1, 0)
    ideal = np.cumsum(discount[:k])[np.minimum(n_relevant, k).astype(np.int64) - 1]
    return {
        "hit_rate": any_hit.astype(np.float64),
        "recall": hits.sum(axis=1) / n_relevant,
        "mrr": np.where(any_hit, 1.0 / np.maximum(first, 1), 0.0),
        "ndcg": (hits * discount[:k]).sum(axis=1) / ideal,
    }


def paired_difference(
    top_ids: np.ndarray, other_ids: np.ndarray, labels: Sequences, n_items: int, metric: str
) -> tuple[float, float]:
    """The mean over queries of ``metric`` (e.g. "mrr_at_100") for ``top_ids`` less
    ``other_ids``' on the same queries, and the standard error of that mean: paired, so what
    both lists find alike cancels out."""
    name, k = metric.rsplit("_at_", 1)
    if min(top_ids.shape[1], other_ids.shape[1]) < int(k):
        raise ValueError(
            f"lists have {min(top_ids.shape[1], other_ids.shape[1])} items; {metric} needs {k}"
        )
    n_relevant = labels.lengths.astype(np.float64)
    mine, theirs = (
        _per_query(relevance(ids, labels, n_items), n_relevant, int(k))[name]
        for ids in (top_ids, other_ids)
    )
    difference = mine - theirs
    return float(difference.mean()), float(difference.std() / np.sqrt(len(difference)))


def hit_rate_curve(top_ids: np.ndarray, labels: Sequences, n_items: int) -> np.ndarray:
    """Hit rate at K = 1 .. k (the width of the lists), for plots."""
    relevant = relevance(top_ids, labels, n_items)
    first_hit = np.where(relevant.any(axis=1), relevant.argmax(axis=1), top_ids.shape[1])
    counts = np.bincount(first_hit, minlength=top_ids.shape[1] + 1)[:-1]
    return np.cumsum(counts) / len(labels)


def served_metrics(
    answers: pd.DataFrame, key_column: str, labels: list[list[str]], k: int
) -> dict[str, float]:
    """Ranking metrics at ``k`` of a served answer (a pyfunc's output: ``row``, ``rank`` and
    ``key_column``) against each row's label keys, whatever catalogue the model was trained on:
    keys are compared as strings, so an old champion can be scored on a new split. Coverage is
    not meaningful here (the vocabulary is what was served and labelled, not a catalogue)."""
    keys = answers[key_column].tolist()
    vocabulary = {
        key: i for i, key in enumerate(sorted(set(keys) | {x for row in labels for x in row}))
    }
    top = np.full((len(labels), k), -1, dtype=np.int32)
    top[answers["row"].to_numpy(), answers["rank"].to_numpy() - 1] = [vocabulary[x] for x in keys]
    label_ids = Sequences.from_lengths(
        np.array([vocabulary[x] for row in labels for x in row], dtype=np.int32),
        np.array([len(row) for row in labels], dtype=np.int64),
    )
    return ranking_metrics(top, label_ids, len(vocabulary), (k,))


def warm_and_popularity_metrics(
    top_ids: np.ndarray, labels: Sequences, train_counts: np.ndarray, ks: tuple[int, ...]
) -> dict[str, float]:
    """What a hit rate over all labels hides. ``warm_hit_rate_at_K``: the hit rate over queries
    with a warm label (an item played in train, the only kind a model can learn), counting hits
    on warm labels; ``warm_queries`` their number. ``mean_popularity_at_K``: the mean train
    play count of the recommended items over the most played item's (session-rec's POP@K: 1
    means every list holds only the top track), a measure of popularity bias."""
    n_items = len(train_counts)
    warm_items = train_counts > 0
    label_items = labels.items
    is_warm_label = (label_items >= 0) & warm_items[np.maximum(label_items, 0)]
    warm_rows = unique(labels.row_of_each_item()[is_warm_label])
    warm_labels = Sequences.from_lengths(
        np.where(is_warm_label, label_items, UNKNOWN).astype(np.int32), labels.lengths
    )
    relevant = relevance(top_ids, warm_labels, n_items)[warm_rows]
    known = top_ids >= 0
    popularity = np.where(known, train_counts[np.maximum(top_ids, 0)], 0) / max(
        int(train_counts.max(initial=0)), 1
    )
    # A figure of no query is left out, not NaN: the tables show it as missing.
    metrics = {"warm_queries": float(len(warm_rows))}
    for k in ks:
        if len(warm_rows):
            metrics[f"warm_hit_rate_at_{k}"] = float(relevant[:, :k].any(axis=1).mean())
        shown = known[:, :k]
        if shown.any():
            metrics[f"mean_popularity_at_{k}"] = float(popularity[:, :k][shown].mean())
    return metrics


# Query lengths people compare models at (tracks heard): a cold start, short, medium, long.
QUERY_LENGTH_BUCKETS: tuple[tuple[int, int | None], ...] = ((1, 2), (3, 5), (6, 10), (11, None))


def query_length_bucket(low: int, high: int | None) -> str:
    return f"{low}+" if high is None else f"{low}-{high}"


def metrics_by_query_length(
    top_ids: np.ndarray,
    history: Sequences,
    labels: Sequences,
    n_items: int,
    ks: tuple[int, ...] = DEFAULT_KS,
) -> dict[str, dict[str, float]]:
    """``ranking_metrics`` of each query-length bucket with at least one query, by bucket name
    ("1-2", "3-5", "6-10", "11+"); the length counts every track heard, known or not."""
    lengths = history.lengths
    buckets = {}
    for low, high in QUERY_LENGTH_BUCKETS:
        rows = np.flatnonzero((lengths >= low) & (lengths <= (high or lengths.max(initial=0))))
        if len(rows):
            buckets[query_length_bucket(low, high)] = ranking_metrics(
                top_ids[rows], labels.take(rows), n_items, ks
            )
    return buckets
