"""Sparse-matrix helpers shared by the co-occurrence families (rules, item and session kNN)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ml.sequences import Sequences


def keep_top_per_row(matrix: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """The ``keep`` largest entries of each row (ties: lower column first), as float32 CSR.
    Only the entries of rows longer than ``keep`` are sorted (at scale, the popular tracks'
    rows); shorter rows are kept whole, so time and memory follow those few rows."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    matrix.sum_duplicates()  # also sorts each row's columns
    lengths = np.diff(matrix.indptr)
    long = np.flatnonzero(lengths > keep)
    if len(long) == 0:
        return matrix
    long_lengths = lengths[long]
    long_starts = np.zeros(len(long), dtype=np.int64)
    np.cumsum(long_lengths[:-1], out=long_starts[1:])
    # positions in matrix.data of the long rows' entries, row after row
    entries = np.arange(long_lengths.sum(), dtype=np.int64) + np.repeat(
        matrix.indptr[long] - long_starts, long_lengths
    )
    long_row = np.repeat(np.arange(len(long), dtype=np.int64), long_lengths)
    order = np.lexsort((matrix.indices[entries], -matrix.data[entries], long_row))
    rank = np.arange(len(order), dtype=np.int64) - np.repeat(long_starts, long_lengths)
    kept = np.ones(matrix.nnz, dtype=bool)
    kept[entries[order[rank >= keep]]] = False
    indptr = np.zeros(matrix.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.minimum(lengths, keep), out=indptr[1:])
    return sp.csr_matrix((matrix.data[kept], matrix.indices[kept], indptr), shape=matrix.shape)


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
