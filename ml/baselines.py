"""Baselines computed on the same training split: most-popular and sequential rules.

Both recommend ``k`` tracks per query, best first, never a track already in the query.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np


class MostPopular:
    name = "most_popular"

    def __init__(self, counts: Mapping[str, int]):
        # Ties broken by key, so the ranking is the same on every run.
        self.ranking = [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        self.counts = dict(counts)

    @classmethod
    def from_sequences(cls, train_sequences: list[list[str]]) -> MostPopular:
        return cls(Counter(track for sequence in train_sequences for track in sequence))

    def fill(self, picked: list[str], seen: set[str], k: int) -> list[str]:
        """Top up ``picked`` to ``k`` with the most popular tracks not seen nor picked."""
        if len(picked) >= k:
            return picked[:k]
        taken = seen | set(picked)
        for track in self.ranking:
            if track not in taken:
                picked.append(track)
                if len(picked) == k:
                    break
        return picked

    def recommend(self, queries: list[list[str]], k: int) -> list[list[str]]:
        return [self.fill([], set(query), k) for query in queries]


class SequentialRules:
    """For each track a, the tracks b that follow it within ``max_distance`` positions, weighted
    1/distance; recommends the top b of the query's last track, popularity-filled."""

    name = "sequential_rules"

    def __init__(
        self, train_sequences: list[list[str]], max_distance: int = 10, keep_per_track: int = 200
    ):
        self.popular = MostPopular.from_sequences(train_sequences)
        vocabulary = sorted(self.popular.counts)
        self.ids = {track: i for i, track in enumerate(vocabulary)}
        self.keys = vocabulary
        n = len(vocabulary)
        flat = np.fromiter(
            (self.ids[t] for s in train_sequences for t in s), dtype=np.int64, count=-1
        )
        playlist = np.repeat(np.arange(len(train_sequences)), [len(s) for s in train_sequences])
        pairs, weights = [], []
        for distance in range(1, max_distance + 1):
            same = playlist[:-distance] == playlist[distance:]
            pairs.append(flat[:-distance][same] * n + flat[distance:][same])
            weights.append(np.full(int(same.sum()), 1.0 / distance))
        all_pairs = np.concatenate(pairs) if pairs else np.empty(0, dtype=np.int64)
        unique, inverse = np.unique(all_pairs, return_inverse=True)
        summed = np.bincount(inverse, weights=np.concatenate(weights) if weights else None)
        source, target = unique // n, unique % n
        # Per source track, targets by weight descending (then id, for determinism).
        order = np.lexsort((target, -summed, source))
        source, target, summed = source[order], target[order], summed[order]
        starts = np.searchsorted(source, np.arange(n + 1))
        self.rules: list[np.ndarray] = [
            target[starts[a] : min(starts[a + 1], starts[a] + keep_per_track)] for a in range(n)
        ]
        self.n_pairs = len(unique)

    def recommend(self, queries: list[list[str]], k: int) -> list[list[str]]:
        result = []
        for query in queries:
            seen = set(query)
            picked: list[str] = []
            last = self.ids.get(query[-1]) if query else None
            if last is not None:
                for b in self.rules[last]:
                    track = self.keys[b]
                    if track not in seen:
                        picked.append(track)
                        if len(picked) == k:
                            break
            result.append(self.popular.fill(picked, seen, k))
        return result


def all_baselines(train_sequences: list[list[str]]) -> list[MostPopular | SequentialRules]:
    return [MostPopular.from_sequences(train_sequences), SequentialRules(train_sequences)]
