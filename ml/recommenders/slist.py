"""SLIST (Choi, Kim, Lee, Shim and Lee, "Session-aware Linear Item-Item Models for Session-based
Recommendation", WWW 2021): one linear item-item model that holds both what a playlist is made of
and what follows what, with a closed form.

On a vocabulary of the ``max_items`` most played train tracks:
- X is playlists x tracks, 1 where the playlist has the track (SLIS: session consistency);
- for every position t >= 1 of a playlist, a row of S holds the up to ``window`` tracks before it,
  the nearest weighted 1, the one before ``decay``, then ``decay**2``..., and the same row of T
  the track at t (SLIT: transitions).
B minimises alpha ||X - X B||^2 + (1 - alpha) ||T - S B||^2 + l2 ||B||^2, whose closed form is
    B = P (alpha X'X + (1 - alpha) S'T),   P = (alpha X'X + (1 - alpha) S'S + l2 I)^-1
      = I - l2 P - (1 - alpha) P (S'S - S'T):
one dense inverse and a product with a sparse matrix. A query's scores are its last ``last_n``
tracks (the most recent weighted 1, then ``recency_decay``...) times B. As in the paper's default,
the diagonal is not constrained: heard tracks are never recommended anyway. Tracks outside the
vocabulary get no score (the popularity fill ranks them).

Cost: dense float32 matrices of vocabulary^2 cells while fitting (16 bytes a cell at the peak,
while inverting) and B in float32 after;
``benchmarks/bench_slist.py`` measures time and memory at a given vocabulary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from pydantic.dataclasses import dataclass

from ml.recommenders.base import CannotFit, Log, Queries, Recommender, no_log, ranking_only
from ml.recommenders.sparse import recency_weighted_queries
from ml.sequences import UNKNOWN, Sequences

# float32 while inverting: the Gram matrix, LAPACK's copy of it, the identity and the inverse.
BYTES_PER_CELL_WHILE_FITTING = 4 * 4
# The pipeline's grid: the setting that won on yes_small (docs/benchmarks.md), on at most 5,000
# tracks, a quarter of the memory of 10,000 (docs/benchmarks.md has both costs).
DEFAULT_GRID = [
    {
        "params": {"alpha": 0.5, "l2": 100.0, "max_items": 5_000},
        "variants": [{"last_n": 10, "recency_decay": 0.8}, {"last_n": 5, "recency_decay": 0.7}],
    }
]


@dataclass(frozen=True)
class SlistParams:
    alpha: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5  # 1: SLIS alone, 0: SLIT alone
    l2: Annotated[float, Field(gt=0.0)] = 10.0
    window: Annotated[int, Field(ge=1, le=100)] = 5  # tracks before a position SLIT learns from
    decay: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5  # their weight per step back
    max_items: Annotated[int, Field(ge=2)] = 10_000  # the vocabulary: most played train tracks
    last_n: int = ranking_only(5, ge=1, le=100)
    recency_decay: float = ranking_only(0.7, gt=0.0, le=1.0)

    @property
    def fit_name(self) -> str:
        return f"a{self.alpha:g}_l2_{self.l2:g}_w{self.window}_d{self.decay:g}_v{self.max_items}"

    @property
    def name(self) -> str:
        return f"{self.fit_name}_last{self.last_n}_r{self.recency_decay:g}"


class Slist(Recommender):
    family = "slist"
    Params = SlistParams

    def __init__(self, params: SlistParams, n_items: int):
        super().__init__(params, n_items)
        self.vocabulary = np.empty(0, dtype=np.int64)  # item ids, ascending
        self.weights = np.zeros((0, 0), dtype=np.float32)  # vocabulary x vocabulary
        self.row_of_item = np.full(n_items, UNKNOWN, dtype=np.int32)

    def fit(self, train: Sequences, log: Log = no_log) -> None:
        p = self.params
        counts = np.bincount(train.items[train.items >= 0], minlength=self.n_items)
        played = np.flatnonzero(counts)
        if len(played) < 2:
            raise CannotFit(f"{self.name}: needs at least two played tracks")
        # The most played first, ties to the lower id; stored ascending.
        order = np.lexsort((played, -counts[played]))[: p.max_items]
        self.set_vocabulary(np.sort(played[order]))
        size = len(self.vocabulary)
        log(
            f"{self.name}: {size:,} of {len(played):,} played tracks, "
            f"{size * size * BYTES_PER_CELL_WHILE_FITTING / 2**30:.1f} GiB of dense matrices"
        )
        mapped = Sequences(self.in_vocabulary(train.items), train.offsets)
        sessions = binary(mapped.to_csr(size))
        inputs, targets = transitions(mapped, size, p.window, p.decay)
        inputs_gram = inputs.T @ inputs  # S'S, in both terms below
        gram = (p.alpha * (sessions.T @ sessions) + (1 - p.alpha) * inputs_gram).toarray()
        gram = gram.astype(np.float32, copy=False)
        gram[np.diag_indices(size)] += p.l2
        # numpy's LAPACK (64-bit indices): scipy's Cholesky and inv crashed (SIGSEGV) at 20,000.
        inverse = np.linalg.inv(gram)
        del gram
        moved = ((1 - p.alpha) * (inputs_gram - inputs.T @ targets)).astype(np.float32)
        del inputs_gram
        # P D as (D' P)' (P is symmetric): sparse times dense, its cost the entries of D times
        # the vocabulary.
        product = np.asarray(moved.T.tocsr() @ inverse)
        inverse *= -p.l2
        inverse -= product.T
        del product
        inverse[np.diag_indices(size)] += 1.0
        self.weights = inverse
        log(f"{self.name}: {size:,} x {size:,} weights from {len(targets.indices):,} transitions")

    def set_vocabulary(self, vocabulary: np.ndarray) -> None:
        self.vocabulary = vocabulary
        self.row_of_item = np.full(self.n_items, UNKNOWN, dtype=np.int32)
        self.row_of_item[vocabulary] = np.arange(len(vocabulary), dtype=np.int32)

    def in_vocabulary(self, items: np.ndarray) -> np.ndarray:
        """Each item's row in the vocabulary; UNKNOWN for an item outside it (or unknown)."""
        rows = np.where(items >= 0, self.row_of_item[np.maximum(items, 0)], UNKNOWN)
        return rows.astype(np.int32, copy=False)

    @property
    def score_width(self) -> int:
        return max(len(self.vocabulary), 1)

    def score(self, queries: Queries) -> sp.csr_matrix:
        history = Sequences(self.in_vocabulary(queries.history.items), queries.history.offsets)
        recent = recency_weighted_queries(
            history, len(self.vocabulary), self.params.last_n, self.params.recency_decay
        )
        # queries x vocabulary; no positive score is no evidence: the fill ranks those tracks
        scores = sp.csr_matrix(np.maximum(recent @ self.weights, 0))
        return sp.csr_matrix(
            (scores.data, self.vocabulary[scores.indices], scores.indptr),
            shape=(len(queries), self.n_items),
        )

    def save_state(self, folder: Path) -> None:
        np.save(folder / "vocabulary.npy", self.vocabulary)
        np.save(folder / "weights.npy", self.weights)

    def load_state(self, folder: Path) -> None:
        self.set_vocabulary(np.load(folder / "vocabulary.npy"))
        self.weights = np.load(folder / "weights.npy")


def binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """1 where an entry is stored: a track repeated in a playlist counts once."""
    matrix.data[:] = 1.0
    return matrix


def transitions(
    playlists: Sequences, size: int, window: int, decay: float
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(S, T): for every position t >= 1 whose track is in the vocabulary, the tracks at t-1 ..
    t-window weighted 1, decay, decay**2..., and the track at t. Tracks outside the vocabulary
    are left out of S; a position whose track is outside it has no row."""
    items = playlists.items
    positions = playlists.position_of_each_item()
    targets = np.flatnonzero((positions >= 1) & (items != UNKNOWN))
    rows, columns, values = [], [], []
    for distance in range(1, window + 1):
        reach = targets[positions[targets] >= distance]
        source = items[reach - distance]
        known = source != UNKNOWN
        rows.append(np.searchsorted(targets, reach[known]))
        columns.append(source[known])
        values.append(np.full(known.sum(), decay ** (distance - 1), dtype=np.float32))
    shape = (len(targets), size)
    inputs = sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))), shape=shape
    )
    inputs.sum_duplicates()  # a track twice within the window: its weights add up
    outputs = sp.csr_matrix(
        (np.ones(len(targets), dtype=np.float32), (np.arange(len(targets)), items[targets])),
        shape=shape,
    )
    return inputs, outputs
