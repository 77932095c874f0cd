"""Next-track recommendation from track embeddings, with a choice of query strategy.

Strategies (each a parameter, compared on validation):
- ``last``: the tutorial's: the vector of the last track only; when that track is unknown to the
  model, ``unknown="random"`` guesses at random and ``unknown="popular"`` falls back to popularity.
- ``last_known``: the last track the model knows (backs off past unknown ones).
- ``recency_mean``: mean of the last ``n_last`` known tracks, weighted ``decay**age``.
Tracks already in the playlist are excluded when ``exclude_seen`` is set; a playlist with no known
track gets the most popular tracks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from ml.baselines import MostPopular
from ml.retrieval import VectorIndex


@dataclass(frozen=True)
class QueryStrategy:
    kind: Literal["last", "last_known", "recency_mean"] = "recency_mean"
    n_last: int = 5
    decay: float = 0.7
    unknown: Literal["popular", "random"] = "popular"
    exclude_seen: bool = True

    @property
    def name(self) -> str:
        if self.kind == "recency_mean":
            base = f"recency_mean_n{self.n_last}_d{self.decay:g}"
        else:
            base = self.kind
        return (
            base
            + ("" if self.exclude_seen else "_keep_seen")
            + ("_random" if self.unknown == "random" else "")
        )

    def as_dict(self) -> dict:
        return asdict(self)


TUTORIAL_STRATEGY = QueryStrategy(kind="last", unknown="random", exclude_seen=False)


class EmbeddingRecommender:
    def __init__(
        self,
        index: VectorIndex,
        popular: MostPopular,
        strategy: QueryStrategy,
        seed: int = 0,
        batch_size: int = 256,
    ):
        self.index, self.popular, self.strategy = index, popular, strategy
        self.seed, self.batch_size = seed, batch_size

    @property
    def name(self) -> str:
        return self.strategy.name

    def _query_vector(self, known: list[int]) -> np.ndarray:
        unit = self.index.unit
        if self.strategy.kind != "recency_mean":
            return unit[known[-1]]
        recent = known[-self.strategy.n_last :]
        weights = self.strategy.decay ** np.arange(len(recent) - 1, -1, -1, dtype=np.float32)
        return weights @ unit[recent]

    def known_ids(self, query: list[str]) -> list[int]:
        ids = self.index.ids
        if self.strategy.kind == "last":
            last = ids.get(query[-1]) if query else None
            return [] if last is None else [last]
        return [ids[t] for t in query if t in ids]

    def recommend_with_scores(
        self, queries: list[list[str]], k: int
    ) -> tuple[list[list[str]], list[list[float]]]:
        rng = np.random.default_rng(self.seed)
        known = [self.known_ids(q) for q in queries]
        rows = [i for i, ids in enumerate(known) if ids]
        recommendations: list[list[str]] = [[] for _ in queries]
        scores: list[list[float]] = [[] for _ in queries]
        if rows:
            vectors = np.stack([self._query_vector(known[i]) for i in rows])
            exclude = None
            if self.strategy.exclude_seen:
                ids = self.index.ids
                exclude = [[ids[t] for t in set(queries[i]) if t in ids] for i in rows]
            top_ids, top_scores = self.index.top_k(vectors, k, exclude, self.batch_size)
            for row, ids_row, scores_row in zip(rows, top_ids, top_scores, strict=True):
                keep = np.isfinite(scores_row)
                recommendations[row] = [self.index.keys[j] for j in ids_row[keep]]
                scores[row] = scores_row[keep].tolist()
        for i, query in enumerate(queries):
            if known[i]:
                continue
            if self.strategy.unknown == "random":
                picks = rng.choice(len(self.index), size=min(k, len(self.index)), replace=False)
                recommendations[i] = [self.index.keys[j] for j in picks]
            else:
                seen = set(query) if self.strategy.exclude_seen else set()
                recommendations[i] = self.popular.fill([], seen, k)
            scores[i] = [0.0] * len(recommendations[i])
        return recommendations, scores

    def recommend(self, queries: list[list[str]], k: int) -> list[list[str]]:
        return self.recommend_with_scores(queries, k)[0]
