"""Top-K selection shared by every family: from dense score blocks, from sparse score rows, and
for combining candidate lists. Heard items are excluded; ties go to the lower item id, so results
are the same on every run.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ml.sequences import UNKNOWN, Sequences


def top_k_dense(scores: np.ndarray, k: int, history: Sequences) -> tuple[np.ndarray, np.ndarray]:
    """(ids, scores) of each row's k best items, heard items excluded; -1/-inf where fewer."""
    n_items = scores.shape[1]
    heard = history.known_item_keys(n_items)
    scores[heard // n_items, heard % n_items] = -np.inf  # callers pass a scratch block
    k_eff = min(k, n_items)
    top = _top_k_columns(scores, k_eff)
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((top, -top_scores), axis=1)
    ids = np.take_along_axis(top, order, axis=1).astype(np.int32)
    values = np.take_along_axis(top_scores, order, axis=1).astype(np.float32)
    ids[~np.isfinite(values)] = UNKNOWN
    return _pad(ids, values, k)


def top_k_sparse(
    scores: sp.csr_matrix, k: int, history: Sequences
) -> tuple[np.ndarray, np.ndarray]:
    """Like ``top_k_dense`` for sparse rows: only stored, non-zero entries are candidates."""
    scores = scores.tocsr()
    scores.sum_duplicates()  # canonical form: each row's columns ascending
    n, n_items = scores.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(scores.indptr))
    cols, values = scores.indices.astype(np.int64), scores.data
    keep = values != 0
    if len(values):
        keys = rows * n_items + cols  # ascending, the form being canonical
        heard = history.known_item_keys(n_items)
        at = np.minimum(np.searchsorted(keys, heard), len(keys) - 1)
        keep[at[keys[at] == heard]] = False
    rows, cols, values = rows[keep], cols[keep], values[keep]
    bounds = np.searchsorted(rows, np.arange(n + 1))
    ids = np.full((n, k), UNKNOWN, dtype=np.int32)
    out = np.full((n, k), -np.inf, dtype=np.float32)
    # Row by row: a partition per row costs far less than sorting every stored entry at once.
    for r in np.flatnonzero(np.diff(bounds)):
        row_cols, row_values = cols[bounds[r] : bounds[r + 1]], values[bounds[r] : bounds[r + 1]]
        if len(row_values) > k:
            best = best_k_positions(row_values, k)
            row_cols, row_values = row_cols[best], row_values[best]
        order = np.lexsort((row_cols, -row_values))
        ids[r, : len(order)] = row_cols[order]
        out[r, : len(order)] = row_values[order]
    return ids, out


def best_k_positions(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest values; of those equal to the k-th largest, the first ones
    (the lowest item ids, as a canonical row's columns are ascending)."""
    kth = np.partition(values, len(values) - k)[len(values) - k]
    above = np.flatnonzero(values > kth)
    return np.concatenate([above, np.flatnonzero(values == kth)[: k - len(above)]])


def _pad(ids: np.ndarray, values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if ids.shape[1] == k:
        return ids, values
    n = len(ids)
    pad = k - ids.shape[1]
    return (
        np.hstack([ids, np.full((n, pad), UNKNOWN, np.int32)]),
        np.hstack([values, np.full((n, pad), -np.inf, np.float32)]),
    )


def _top_k_columns(block: np.ndarray, k: int) -> np.ndarray:
    """Column ids of each row's k largest values (unordered), exactly.

    A full argpartition of every row costs more than the matrix product that made the block, so
    on wide blocks a cheap lower bound comes first: the k-th largest value among the first m
    columns is at most the row's true k-th largest, so every true top-k value is >= it. Only
    those candidates (a few k per row) are partitioned, row by row while the row is in cache.
    """
    width = block.shape[1]
    sample = max(8 * k, width // 16)
    if sample >= width // 2:
        return np.argpartition(block, width - k, axis=1)[:, width - k :]
    bounds = np.partition(block[:, :sample], sample - k, axis=1)[:, sample - k]
    top = np.empty((len(block), k), dtype=np.int64)
    for r, (row, bound) in enumerate(zip(block, bounds, strict=True)):
        if bound > -np.inf:
            candidates = np.flatnonzero(row >= bound)
            values = row[candidates]
            top[r] = candidates[np.argpartition(values, len(values) - k)[len(values) - k :]]
        else:  # a query the model does not know: partitioning the whole row cost the most
            candidates = _finite_then_any(row, k)
            top[r] = candidates[best_k_positions(row[candidates], k)]
    return top


def _finite_then_any(row: np.ndarray, k: int) -> np.ndarray:
    """Columns of ``row``'s finite values, then of as many others as make ``k``: the -inf ones
    are listed as unknown, so which of them fill the list does not change it."""
    finite = np.flatnonzero(row > -np.inf)
    if len(finite) >= k:
        return finite
    # The first len(finite) + k columns hold at least k that are not finite.
    others = np.flatnonzero(~(row[: len(finite) + k] > -np.inf))[: k - len(finite)]
    return np.concatenate([finite, others])


def normalise_rows(scores: np.ndarray) -> np.ndarray:
    """Each row's finite scores mapped to [0, 1] (min-max within the row); -inf stays -inf.
    Scores of different families then add up on one scale, per query."""
    finite = np.isfinite(scores)
    low = np.where(finite, scores, np.inf).min(axis=1, keepdims=True)
    high = np.where(finite, scores, -np.inf).max(axis=1, keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    return np.where(finite, (scores - np.where(np.isfinite(low), low, 0.0)) / span, -np.inf)


def combine(
    ids: list[np.ndarray], scores: list[np.ndarray], weights: list[float], n_items: int
) -> sp.csr_matrix:
    """queries x items: the weighted sum of several candidate lists per query (an item missing
    from a list adds 0). ``scores`` are expected per-row normalised (``normalise_rows``)."""
    n = len(ids[0])
    rows = np.concatenate([np.repeat(np.arange(n, dtype=np.int64), i.shape[1]) for i in ids])
    items = np.concatenate([i.reshape(-1) for i in ids]).astype(np.int64)
    values = np.concatenate(
        [
            w * np.where(np.isfinite(s), s, 0.0).reshape(-1)
            for w, s in zip(weights, scores, strict=True)
        ]
    )
    keep = items != UNKNOWN
    combined = sp.csr_matrix(
        (values[keep].astype(np.float32), (rows[keep], items[keep])), shape=(n, n_items)
    )
    combined.sum_duplicates()
    # Every candidate stays eligible, even with a zero sum, so lists stay as full as they were.
    combined.data += np.float32(1e-6)
    return combined
