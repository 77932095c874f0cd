"""Sparse-matrix helpers shared by the co-occurrence families (rules, item and session kNN)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ml.sequences import Sequences


def keep_top_per_row(matrix: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """The ``keep`` largest entries of each row (ties: lower column first), as float32 CSR."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    matrix.sum_duplicates()
    lengths = np.diff(matrix.indptr)
    if lengths.max(initial=0) <= keep:
        return matrix
    rows = np.repeat(np.arange(matrix.shape[0]), lengths)
    order = np.lexsort((matrix.indices, -matrix.data, rows))
    rank = np.arange(len(order)) - matrix.indptr[rows[order]]
    chosen = order[rank < keep]
    chosen.sort()  # back to row-major order, columns ascending within a row
    return sp.csr_matrix(
        (matrix.data[chosen], matrix.indices[chosen], _indptr(rows[chosen], matrix.shape[0])),
        shape=matrix.shape,
    )


def _indptr(rows: np.ndarray, n_rows: int) -> np.ndarray:
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
