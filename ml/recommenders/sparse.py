"""Sparse-matrix helpers shared by the co-occurrence families (rules, item and session kNN)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import scipy.sparse as sp

from ml.recommenders.base import SCORING_THREADS, map_concurrently
from ml.recommenders.topk import best_k_positions
from ml.sequences import Sequences
from ml.sorted_sets import unique

T = TypeVar("T")


def keep_top_per_row(matrix: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """The ``keep`` largest entries of each row (ties: lower column first), as float32 CSR.
    Only the rows longer than ``keep`` (at scale, the popular tracks') are pruned, a partition
    each: sorting all their entries at once took most of a full-scale rules fit."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    matrix.sum_duplicates()  # also sorts each row's columns
    lengths = np.diff(matrix.indptr)
    long = np.flatnonzero(lengths > keep)
    if len(long) == 0:
        return matrix
    kept = np.ones(matrix.nnz, dtype=bool)
    for row in long:
        start, stop = matrix.indptr[row], matrix.indptr[row + 1]
        kept[start:stop] = False
        kept[start + best_k_positions(matrix.data[start:stop], keep)] = True
    indptr = np.zeros(matrix.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.minimum(lengths, keep), out=indptr[1:])
    return sp.csr_matrix((matrix.data[kept], matrix.indices[kept], indptr), shape=matrix.shape)


def nearby_pairs(
    sequences: Sequences,
    n_items: int,
    max_distance: int,
    weight_of_distance: Callable[[int], float],
    per_block: Callable[[int, sp.csr_matrix], T],
    both_directions: bool = False,
    block_entries: int = 10_000_000,
) -> list[T]:
    """Items x items, summed over every pair where track b follows track a within
    ``max_distance`` positions of one sequence: ``weight_of_distance(d)`` at (a, b), and at
    (b, a) too when ``both_directions``. Returns ``per_block(first_row, rows)`` of each block
    of consecutive rows (source tracks), in order, so that its caller prunes a block before it
    is kept. Blocks are built on the scoring threads, each from about ``block_entries`` /
    ``SCORING_THREADS`` pairs, so memory stays at about ``block_entries`` pairs at once. The
    positions are sorted by track once, so a block reads only its own tracks' positions (not
    every pair once per block), and one COO build per block sums the duplicates in C. A row
    lies in one block, so the blocks' bounds change nothing in it."""
    items = np.array(sequences.items)  # in memory: gathered once per distance and block
    position = sequences.position_of_each_item()
    after = sequences.age_of_each_item()  # tracks after each position in its sequence
    reach = max(0, min(max_distance, len(items) - 1))  # distances 1..reach
    pairs_at = np.minimum(after, reach)
    if both_directions:
        pairs_at += np.minimum(position, reach)
    per_item = np.bincount(items, weights=pairs_at, minlength=n_items).astype(np.int64)
    by_track = np.argsort(items, kind="stable")
    track_starts = np.r_[0, np.cumsum(np.bincount(items, minlength=n_items))]
    cumulative = np.cumsum(per_item)
    total = int(cumulative[-1]) if n_items else 0
    size = max(1, block_entries // SCORING_THREADS)
    cuts = np.searchsorted(cumulative, np.arange(1, -(-total // size)) * size)
    bounds = np.r_[0, np.unique(np.r_[cuts, n_items])]  # one block at least

    def built(first: int, last: int) -> T:
        at = by_track[track_starts[first] : track_starts[last]]
        source, after_at, position_at = items[at] - first, after[at], position[at]
        sources, targets, weights = [], [], []
        for d in range(1, reach + 1):
            directions = [(after_at >= d, d)]
            if both_directions:
                directions.append((position_at >= d, -d))
            for valid, step in directions:
                sources.append(source[valid])
                targets.append(items[at[valid] + step])
                weights.append(np.full(len(sources[-1]), weight_of_distance(d)))
        block = sp.coo_matrix(
            (_joined(weights, np.float64), (_joined(sources), _joined(targets))),
            shape=(int(last - first), n_items),
        ).tocsr()  # duplicates summed, in float64: the order of the sum cannot tell
        return per_block(int(first), block)

    return map_concurrently(lambda bound: built(*bound), list(itertools.pairwise(bounds)))


def _joined(parts: list[np.ndarray], dtype: type = np.int32) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, dtype)


def save_matrix(path: Path, matrix: sp.spmatrix) -> None:
    """Uncompressed: zlib costs far more time than the disk it saves (docs/constants.md)."""
    sp.save_npz(path, matrix, compressed=False)


def indptr_of_rows(rows: np.ndarray, n_rows: int) -> np.ndarray:
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr


def recency_weighted_queries(
    history: Sequences, n_items: int, last_n: int, decay: float
) -> sp.csr_matrix:
    """queries x items: the last ``last_n`` items of each history, the most recent weighted 1,
    the one before ``decay``, then ``decay**2``...; unknown items (-1) carry no weight."""
    recent = history.last(last_n)
    weights = decay ** recent.age_of_each_item().astype(np.float32)
    return recent.to_csr(n_items, weights=weights.astype(np.float32))


def product(left: sp.csr_matrix, right: sp.csr_matrix) -> sp.csr_matrix:
    """``left @ right`` (CSR), the same entries. scipy's product takes scratch space as wide as
    ``right`` has columns on every call, so scoring one query paid for the whole catalogue: when
    the rows of ``right`` that ``left`` uses hold fewer entries than ``right`` has columns, only
    those rows are taken and their columns renumbered before multiplying."""
    left, right = sp.csr_matrix(left), sp.csr_matrix(right)
    used = unique(left.indices)
    touched = int((right.indptr[used + 1] - right.indptr[used]).sum())
    if touched >= right.shape[1]:
        return sp.csr_matrix(left @ right)
    rows = right[used]
    columns, renumbered = np.unique(rows.indices, return_inverse=True)
    narrow = sp.csr_matrix(
        (rows.data, renumbered.astype(np.int64), rows.indptr), shape=(len(used), len(columns))
    )
    local = sp.csr_matrix(
        (left.data, np.searchsorted(used, left.indices), left.indptr),
        shape=(left.shape[0], len(used)),
    )
    result = local @ narrow
    return sp.csr_matrix(
        (result.data, columns[result.indices], result.indptr), shape=(left.shape[0], right.shape[1])
    )
