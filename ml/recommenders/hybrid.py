"""A weighted hybrid of fitted recommenders of different families.

Each component proposes its ``depth`` best items per query; scores are normalised per query
(min-max within the list) and summed with the hybrid's weights, an item missing from a list
adding 0. Weights are chosen on validation (``search_weights``): the same queries every
component already ranked, so the search re-weights one table of their candidates, with no
model call.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Annotated

import numpy as np
import scipy.sparse as sp
from pydantic import Field, field_validator
from pydantic.dataclasses import dataclass

from ml.recommenders.base import Log, Queries, Recommender, TopK, no_log, refit_components
from ml.recommenders.topk import combine, normalise_rows, top_k_sparse
from ml.sequences import UNKNOWN, Sequences
from ml.sorted_sets import isin, unique

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

    def fitted_models(self) -> list[Recommender]:
        return [self, *self.parts]

    def fit(self, train: Sequences, log: Log = no_log) -> None:
        refit_components(self.parts, train, log)

    @property
    def score_width(self) -> int:
        return self.params.depth * len(self.params.weights)

    def score(self, queries: Queries) -> sp.csr_matrix:
        lists = [part.top_k(queries, self.params.depth) for part in self.parts]
        return merged_scores(lists, self.params.weights, self.n_items)

    def top_k_of(self, lists: list[TopK], queries: Queries, k: int) -> TopK:
        """``top_k`` from its components' ``depth``-long lists for these queries, already
        ranked: what the weight search saw, ranked without a second pass of every component."""
        scores = merged_scores(lists, self.params.weights, self.n_items)
        return TopK(*top_k_sparse(scores, k, queries.history))

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


def search_weights(
    lists: list[TopK], labels: Sequences, n_items: int, k: int
) -> tuple[list[float], dict[str, float]]:
    """The weights (from a small grid, one per list) with the best hit rate@k on these labels,
    ties broken by MRR@k; returns them with their hit rate@k and MRR@k. Each weighting ranks
    exactly as ``merged_scores`` would, but only the labels' ranks are computed."""
    union = CandidateUnion.of(lists, labels, n_items)
    best: tuple[tuple[float, float], list[float]] | None = None
    seen: set[tuple[float, ...]] = set()
    for weights in itertools.product(WEIGHT_LEVELS, repeat=len(lists)):
        top = max(weights)
        if top == 0:
            continue
        key = tuple(round(w / top, 6) for w in weights)  # scaling all weights ranks alike
        if key in seen:
            continue
        seen.add(key)
        score = union.hit_rate_and_mrr(list(key), k)
        if best is None or score > best[0]:
            best = (score, list(key))
    assert best is not None
    (hit_rate, mrr), weights = best
    return weights, {f"hit_rate_at_{k}": hit_rate, f"mrr_at_{k}": mrr}


@dataclasses.dataclass(frozen=True)
class CandidateUnion:
    """Every (query, item) some list proposes, with each list's normalised score (0 where the
    list lacks it): the weight search re-weights this table instead of merging lists again."""

    rows: np.ndarray  # (E,) int64, query of each entry
    items: np.ndarray  # (E,) int64
    scores: np.ndarray  # (E, lists) float32
    proposed: np.ndarray  # (E, lists) bool: the list holds the item
    labels: np.ndarray  # (L,) int64: entries that are a relevant item of their query
    n_queries: int

    @classmethod
    def of(cls, lists: list[TopK], labels: Sequences, n_items: int) -> CandidateUnion:
        keys_per_list, scores_per_list = [], []
        for top in lists:
            rows = np.repeat(np.arange(len(top), dtype=np.int64), top.ids.shape[1])
            items = top.ids.reshape(-1).astype(np.int64)
            scores = normalise_rows(top.scores).reshape(-1)
            keep = items != UNKNOWN
            keys_per_list.append(rows[keep] * n_items + items[keep])
            scores_per_list.append(np.where(np.isfinite(scores[keep]), scores[keep], 0.0))
        keys = unique(np.concatenate(keys_per_list))
        labelled = isin(keys, labels.known_item_keys(n_items))
        # A query none of whose candidates is relevant scores 0 under every weighting: only the
        # queries with a relevant candidate are kept (a fraction of the entries at scale).
        has_label = np.zeros(len(labels), dtype=bool)
        has_label[keys[labelled] // n_items] = True
        kept = has_label[keys // n_items]
        keys, labelled = keys[kept], labelled[kept]
        table = np.zeros((len(keys), len(lists)), dtype=np.float32)
        proposed = np.zeros((len(keys), len(lists)), dtype=bool)
        for j, list_keys in enumerate(keys_per_list):
            at = np.searchsorted(keys, list_keys)
            mine = at < len(keys)
            mine[mine] = keys[at[mine]] == list_keys[mine]
            np.add.at(table[:, j], at[mine], scores_per_list[j][mine].astype(np.float32))
            proposed[at[mine], j] = True
        return cls(
            rows=keys // n_items,
            items=keys % n_items,
            scores=table,
            proposed=proposed,
            labels=np.flatnonzero(labelled),
            n_queries=len(labels),
        )

    def hit_rate_and_mrr(self, weights: list[float], k: int) -> tuple[float, float]:
        """Hit rate@k and MRR@k of the merged lists: higher sum first, lower item id on ties,
        only items of lists with a positive weight."""
        active = np.asarray(weights) > 0
        values = self.scores[:, active] @ np.asarray(weights, dtype=np.float32)[active]
        candidate = self.proposed[:, active].any(axis=1)
        labels = self.labels[candidate[self.labels]]
        if len(labels) == 0:
            return 0.0, 0.0
        # the best-placed label of each query: highest value, then lowest item id
        order = np.lexsort((self.items[labels], -values[labels], self.rows[labels]))
        labels = labels[order]
        labels = labels[np.r_[True, self.rows[labels][1:] != self.rows[labels][:-1]]]
        label_of_row = np.full(self.n_queries, -1, dtype=np.int64)
        label_of_row[self.rows[labels]] = labels
        mine = label_of_row[self.rows]
        has = candidate & (mine >= 0)
        theirs = np.where(has, mine, 0)
        ahead = has & (
            (values > values[theirs])
            | ((values == values[theirs]) & (self.items < self.items[theirs]))
        )
        rank = np.bincount(self.rows[ahead], minlength=self.n_queries)[self.rows[labels]] + 1
        hit = rank <= k
        return float(hit.sum() / self.n_queries), float((1.0 / rank[hit]).sum() / self.n_queries)
