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
        self._unit_t = np.ascontiguousarray(self.unit.T)

    def __len__(self) -> int:
        return len(self.keys)

    def top_k(
        self,
        queries: np.ndarray,
        k: int,
        exclude: list[list[int]] | None = None,
        batch_size: int = 256,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ids and cosine scores (n, k'), best first, k' = min(k, n_tracks); ``exclude[i]`` are
        ids never returned for query i (their score is -inf if fewer than k' remain)."""
        n = len(queries)
        k = min(k, len(self.keys))
        ids = np.empty((n, k), dtype=np.int64)
        scores = np.empty((n, k), dtype=np.float32)
        norms = np.linalg.norm(queries, axis=1, keepdims=True)
        unit_queries = (queries / np.where(norms == 0, 1, norms)).astype(np.float32)
        # One score buffer reused by every batch: fresh pages for each batch cost more than
        # the matrix product itself.
        buffer = np.empty((min(batch_size, n), len(self.keys)), dtype=np.float32)
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            block = np.matmul(unit_queries[start:stop], self._unit_t, out=buffer[: stop - start])
            if exclude is not None:
                rows = [r for r in range(stop - start) for _ in exclude[start + r]]
                cols = [c for r in range(stop - start) for c in exclude[start + r]]
                block[rows, cols] = -np.inf
            top = _top_k_rows(block, k)
            top_scores = np.take_along_axis(block, top, axis=1)
            order = np.argsort(-top_scores, axis=1, kind="stable")
            ids[start:stop] = np.take_along_axis(top, order, axis=1)
            scores[start:stop] = np.take_along_axis(top_scores, order, axis=1)
        return ids, scores


def _top_k_rows(block: np.ndarray, k: int) -> np.ndarray:
    """Column ids of each row's k largest values (unordered), exactly.

    A full argpartition of every row costs more than the matrix product, so on wide blocks a
    cheap lower bound comes first: the k-th largest value among the first m columns can only be
    below the row's true k-th largest, so every true top-k value is >= it. Only those candidates
    (a few k per row) are partitioned, row by row while the row is in cache.
    """
    width = block.shape[1]
    sample = max(8 * k, width // 16)
    if sample >= width // 2:
        return np.argpartition(block, width - k, axis=1)[:, width - k :]
    bounds = np.partition(block[:, :sample], sample - k, axis=1)[:, sample - k]
    top = np.empty((len(block), k), dtype=np.int64)
    for r, (row, bound) in enumerate(zip(block, bounds, strict=True)):
        candidates = np.flatnonzero(row >= bound)
        values = row[candidates]
        top[r] = candidates[np.argpartition(values, len(values) - k)[len(values) - k :]]
    return top
