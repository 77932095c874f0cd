"""Exact top-K by cosine over all track vectors, as batched matrix products.

Memory is bounded by ``batch_size x n_tracks`` scores, not by queries x tracks.
"""

from __future__ import annotations

import numpy as np


class VectorIndex:
    def __init__(self, keys: list[str], vectors: np.ndarray):
        if len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys but {len(vectors)} vectors")
        self.keys = list(keys)
        self.ids = {key: i for i, key in enumerate(self.keys)}
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.unit = (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)

    def __len__(self) -> int:
        return len(self.keys)

    def top_k(
        self,
        queries: np.ndarray,
        k: int,
        exclude: list[list[int]] | None = None,
        batch_size: int = 1024,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ids and cosine scores (n, k'), best first, k' = min(k, n_tracks); ``exclude[i]`` are
        ids never returned for query i."""
        n = len(queries)
        k = min(k, len(self.keys))
        ids = np.empty((n, k), dtype=np.int64)
        scores = np.empty((n, k), dtype=np.float32)
        norms = np.linalg.norm(queries, axis=1, keepdims=True)
        unit_queries = (queries / np.where(norms == 0, 1, norms)).astype(np.float32)
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            block = unit_queries[start:stop] @ self.unit.T
            if exclude is not None:
                rows = [r for r in range(stop - start) for _ in exclude[start + r]]
                cols = [c for r in range(stop - start) for c in exclude[start + r]]
                block[rows, cols] = -np.inf
            top = np.argpartition(-block, k - 1, axis=1)[:, :k]
            top_scores = np.take_along_axis(block, top, axis=1)
            order = np.argsort(-top_scores, axis=1, kind="stable")
            ids[start:stop] = np.take_along_axis(top, order, axis=1)
            scores[start:stop] = np.take_along_axis(top_scores, order, axis=1)
        return ids, scores
