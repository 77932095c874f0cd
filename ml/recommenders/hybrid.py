"""A weighted hybrid of fitted recommenders of different families.

Each component proposes its ``depth`` best items per query; scores are normalised per query
(min-max within the list) and summed with the hybrid's weights, an item missing from a list
adding 0. Weights are chosen on validation (``search_weights``): the same queries every
component already ranked, so the search costs merges, not model calls.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated

import scipy.sparse as sp
from pydantic import Field, field_validator
from pydantic.dataclasses import dataclass

from ml.evaluation.metrics import ranking_metrics
from ml.recommenders.base import Log, Queries, Recommender, TopK, _no_log
from ml.recommenders.topk import combine, normalise_rows, top_k_sparse
from ml.sequences import Sequences

WEIGHT_LEVELS = (0.0, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class HybridParams:
    components: list[str]  # component names, for people; their models are the state
    weights: list[Annotated[float, Field(ge=0.0)]]
    depth: Annotated[int, Field(ge=1, le=10_000)] = 200

    @field_validator("weights")
    @classmethod
    def some_weight(cls, weights: list[float]) -> list[float]:
        if not any(w > 0 for w in weights):
            raise ValueError("at least one weight must be positive")
        return weights

    @property
    def fit_name(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return "+".join(
            f"{w:g}*{c.split(':')[0]}" for c, w in zip(self.components, self.weights, strict=True)
        )


class Hybrid(Recommender):
    family = "hybrid"
    Params = HybridParams

    def __init__(self, params: HybridParams, n_items: int):
        super().__init__(params, n_items)
        if len(params.weights) != len(params.components):
            raise ValueError(
                f"hybrid: {len(params.weights)} weights for {len(params.components)} components"
            )
        self.parts: list[Recommender] = []

    @classmethod
    def of(cls, parts: list[Recommender], weights: list[float], depth: int = 200) -> Hybrid:
        hybrid = cls(HybridParams([p.name for p in parts], list(weights), depth), parts[0].n_items)
        hybrid.parts = parts
        return hybrid

    def fit(self, train: Sequences, log: Log = _no_log) -> None:
        for part in self.parts:
            part.fit(train, log)

    def score(self, queries: Queries) -> sp.csr_matrix:
        lists = [part.top_k(queries, self.params.depth) for part in self.parts]
        return merged_scores(lists, self.params.weights, self.n_items)

    def save_state(self, folder: Path) -> None:
        for i, part in enumerate(self.parts):
            part.save(folder / f"component_{i}")

    def load_state(self, folder: Path) -> None:
        from ml.recommenders.families import load_recommender  # the registry imports this module

        self.parts = [
            load_recommender(folder / f"component_{i}") for i in range(len(self.params.weights))
        ]


def merged_scores(lists: list[TopK], weights: list[float], n_items: int) -> sp.csr_matrix:
    active = [(t, w) for t, w in zip(lists, weights, strict=True) if w > 0]
    return combine(
        [t.ids for t, _ in active],
        [normalise_rows(t.scores) for t, _ in active],
        [w for _, w in active],
        n_items,
    )


def merge(lists: list[TopK], weights: list[float], k: int, n_items: int) -> TopK:
    scores = merged_scores(lists, weights, n_items)
    return TopK(*top_k_sparse(scores, k, Sequences.empty(len(lists[0]))))


def search_weights(
    lists: list[TopK], labels: Sequences, n_items: int, k: int
) -> tuple[list[float], dict[str, float]]:
    """The weights (from a small grid, one per list) with the best hit rate@k on these labels,
    ties broken by MRR@k; returns them with their metrics."""
    best: tuple[tuple[float, float], list[float], dict[str, float]] | None = None
    seen: set[tuple[float, ...]] = set()
    for weights in itertools.product(WEIGHT_LEVELS, repeat=len(lists)):
        top = max(weights)
        if top == 0:
            continue
        key = tuple(round(w / top, 6) for w in weights)  # scaling all weights ranks alike
        if key in seen:
            continue
        seen.add(key)
        merged = merge(lists, list(key), k, n_items)
        metrics = ranking_metrics(merged.ids, labels, n_items, (k,))
        score = (metrics[f"hit_rate_at_{k}"], metrics[f"mrr_at_{k}"])
        if best is None or score > best[0]:
            best = (score, list(key), metrics)
    assert best is not None
    return best[1], best[2]
