"""Most popular items of the train split: the first baseline, and the fill of every family."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic.dataclasses import dataclass

from ml.recommenders.base import Log, Queries, Recommender, TopK, no_log
from ml.sequences import UNKNOWN, Sequences
from ml.sorted_sets import isin


@dataclass(frozen=True)
class PopularityParams:
    @property
    def fit_name(self) -> str:
        return "count"

    @property
    def name(self) -> str:
        return "count"


class Popularity(Recommender):
    family = "popularity"
    Params = PopularityParams

    def __init__(self, params: PopularityParams | None = None, n_items: int = 0):
        super().__init__(params or PopularityParams(), n_items)
        self.counts = np.zeros(n_items, dtype=np.int64)

    @classmethod
    def from_counts(cls, counts: np.ndarray) -> Popularity:
        """Popularity already counted (the catalogue's train plays)."""
        popularity = cls(n_items=len(counts))
        popularity.counts = counts.astype(np.int64, copy=False)
        return popularity

    def fit(self, train: Sequences, log: Log = no_log) -> None:
        self.counts = np.bincount(train.items[train.items >= 0], minlength=self.n_items)

    @property
    def ranking(self) -> np.ndarray:
        """Item ids by train count, descending; ties by id."""
        return np.lexsort((np.arange(self.n_items), -self.counts)).astype(np.int32)

    def score(self, queries: Queries) -> np.ndarray:
        return np.broadcast_to(self.counts.astype(np.float32), (len(queries), self.n_items))

    def top_k(self, queries: Queries, k: int) -> TopK:
        """The same ranking for every query, minus what it heard; never a dense score block."""
        ranking = self.ranking
        parts = []
        for start in range(0, len(queries), self.batch_size):
            batch = queries.slice(start, min(start + self.batch_size, len(queries)))
            width = min(self.n_items, k + int(batch.history.lengths.max(initial=0)))
            ids = np.broadcast_to(ranking[:width], (len(batch), width))
            parts.append(_first_k_not_in(ids, batch, k, self.n_items, self.counts))
        return TopK.concatenate(parts, k)

    def fill(self, top: TopK, queries: Queries) -> tuple[TopK, np.ndarray]:
        """Empty (-1) slots of ``top`` filled with the most popular items neither heard nor
        already recommended; returns the filled lists and a mask of the filled slots."""
        ids, scores = top.ids.copy(), top.scores.copy()
        filled = np.zeros(ids.shape, dtype=bool)
        rows = np.flatnonzero((ids < 0).any(axis=1))
        if len(rows) == 0 or self.n_items == 0:
            return TopK(ids, scores), filled
        k = ids.shape[1]
        # Heard and already recommended items are both "taken" for the fill.
        history = queries.history.take(rows)
        recommended = ids[rows]
        row_of = np.concatenate([history.row_of_each_item(), np.nonzero(recommended >= 0)[0]])
        items = np.concatenate([history.items, recommended[recommended >= 0]])
        order = np.argsort(row_of, kind="stable")
        taken = Sequences.from_lengths(items[order], np.bincount(row_of, minlength=len(rows)))
        popular = self.top_k(Queries(taken), k)
        have = (ids[rows] >= 0).sum(axis=1)
        slot = np.arange(k)[None, :] - have[:, None]  # j-th free slot takes the j-th popular item
        free = slot >= 0
        picks = np.take_along_axis(popular.ids, np.where(free, slot, 0), axis=1)
        free &= picks >= 0
        sub_ids, sub_scores = ids[rows], scores[rows]
        sub_ids[free] = picks[free]
        sub_scores[free] = 0.0
        ids[rows], scores[rows] = sub_ids, sub_scores
        filled[rows] = free
        return TopK(ids, scores), filled

    def save_state(self, folder: Path) -> None:
        np.save(folder / "counts.npy", self.counts)

    def load_state(self, folder: Path) -> None:
        self.counts = np.load(folder / "counts.npy")


def _first_k_not_in(
    ids: np.ndarray, batch: Queries, k: int, n_items: int, counts: np.ndarray
) -> TopK:
    """Per row, the first k entries of ``ids`` that the row has not heard."""
    n = len(ids)
    keys = np.arange(n, dtype=np.int64)[:, None] * n_items + ids
    free = ~isin(keys, batch.history.known_item_keys(n_items))
    order = np.argsort(~free, axis=1, kind="stable")[:, :k]
    chosen = np.take_along_axis(ids, order, axis=1).astype(np.int32)
    valid = np.take_along_axis(free, order, axis=1)
    chosen[~valid] = UNKNOWN
    scores = np.where(valid, counts[np.maximum(chosen, 0)], -np.inf).astype(np.float32)
    if chosen.shape[1] < k:
        pad = k - chosen.shape[1]
        chosen = np.hstack([chosen, np.full((n, pad), UNKNOWN, np.int32)])
        scores = np.hstack([scores, np.full((n, pad), -np.inf, np.float32)])
    return TopK(chosen, scores)
