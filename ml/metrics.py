"""Next-track metrics for one hidden label per query.

With one relevant item at 1-based rank r (when r <= K): hit = 1, reciprocal rank = 1/r,
NDCG = 1/log2(r + 1) (the ideal DCG is 1). Coverage@K is the share of the catalog that appears in
at least one top-K list.
"""

from __future__ import annotations

import numpy as np

DEFAULT_KS = (10, 20, 100)


def label_ranks(recommendations: list[list[str]], labels: list[str]) -> np.ndarray:
    """1-based rank of each label in its list, 0 where absent."""
    ranks = np.zeros(len(labels), dtype=np.int64)
    for i, (recommended, label) in enumerate(zip(recommendations, labels, strict=True)):
        if label in recommended:
            ranks[i] = recommended.index(label) + 1
    return ranks


def hits_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """Whether each label was recommended within the top ``k``."""
    return (ranks > 0) & (ranks <= k)


def next_track_metrics(
    recommendations: list[list[str]],
    labels: list[str],
    catalog_size: int,
    ks: tuple[int, ...] = DEFAULT_KS,
) -> dict[str, float]:
    if not labels:
        raise ValueError("no queries to evaluate")
    ranks = label_ranks(recommendations, labels)
    metrics: dict[str, float] = {"queries": float(len(labels))}
    for k in ks:
        hit = hits_at(ranks, k)
        metrics[f"hit_rate_at_{k}"] = float(hit.mean())
        metrics[f"mrr_at_{k}"] = float(np.where(hit, 1.0 / np.maximum(ranks, 1), 0.0).mean())
        metrics[f"ndcg_at_{k}"] = float(
            np.where(hit, 1.0 / np.log2(np.maximum(ranks, 1) + 1.0), 0.0).mean()
        )
        recommended = {track for top in recommendations for track in top[:k]}
        metrics[f"coverage_at_{k}"] = len(recommended) / catalog_size if catalog_size else 0.0
    return metrics
