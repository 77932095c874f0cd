"""Neighbourhood recommenders on sparse matrices: item-kNN and the session-kNN family.

``ItemKNN`` (``item_knn``): tracks are similar when they share train playlists; similarity is the
(asymmetric) cosine of co-occurrence, ``co(i, j) / (count_i**alpha * count_j**(1 - alpha) +
shrink)``, self-similarity removed and the ``neighbours`` most similar tracks kept per track.
``co`` counts the playlists holding both and ``count`` those holding the track; with a
``window``, ``co`` counts the pairs of positions at most ``window`` apart holding the two tracks
and ``count`` the track's occurrences (the whole playlist costs the square of its length, which
the longest playlists of a large file make prohibitive; a window costs its width per track). A
query is its last ``last_n`` known tracks weighted ``recency_decay**age``; a track's score is the
weighted sum of its similarities. With a large ``last_n`` and decay 1 it scores a user's whole
history (the user-items use case).

``SessionKNN`` (``session_knn``): one scoring scheme whose parameters give SKNN (Jannach & Ludewig
2017), V-SKNN (Ludewig & Jannach 2018), STAN (Garg et al. 2019) and VSTAN (Ludewig et al. 2021).
For a query ``q`` of length ``L`` (the last ``last_n`` known tracks; a repeated track counts at
its most recent position ``p``, 1-based, ``L`` the most recent):

- query weights ``w(p)``: uniform 1 (SKNN), linear ``p / L`` (V-SKNN), or exponential
  ``exp((p - L) / lambda_position)`` (STAN's lambda1);
- candidates: the ``sample_size`` most recent train playlists sharing a track with ``q``;
- similarity ``sim(q, n) = sum of w over shared tracks``, divided for ``cosine`` by
  ``||w||_2 * sqrt(|n|)`` (``dot``: V-SKNN's unnormalised overlap), times
  ``exp(-age(n) / lambda_recency)`` when set (STAN's lambda2); the ``k`` most similar are the
  neighbours (ties: the more recent);
- a track ``j`` of neighbour ``n`` scores ``sim(q, n) * match(q, n) * near(j, n) *
  (1 + idf_weight * idf(j))`` summed over neighbours, where ``match`` weighs the neighbour by the
  query position ``p*`` of the most recent query track it shares (uniform; ``inverse``:
  ``1 / (L - p* + 1)``, V-SKNN; ``exponential``: ``exp((p* - L) / lambda_match)``, VSTAN),
  ``near(j, n) = exp(-|pos(j, n) - pos(i*, n)| / lambda_item_position)`` with ``i*`` that same
  shared track (STAN's lambda3; 1 when unset), and ``idf(j) = log(sessions / sessions with j)``.

No timestamps here: train playlists are in source order, so a higher train row is more recent.
``age(n)`` is the number of train playlists newer than ``n`` as a fraction of all of them (0 for
the newest, just under 1 for the oldest), so ``lambda_recency`` is in units of "the whole train
split" on any data set. Session-rec anchors ``near`` at the shared track that comes last in the
neighbour; we anchor at the query's most recent shared track, as the STAN paper defines ``i*``;
the two agree whenever shared tracks keep their order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from pydantic.dataclasses import dataclass

from ml.recommenders.base import CannotFit, Log, Queries, Recommender, no_log, ranking_only
from ml.recommenders.sparse import (
    indptr_of_rows,
    keep_top_per_row,
    nearby_pairs,
    product,
    recency_weighted_queries,
    save_matrix,
)
from ml.sequences import UNKNOWN, Sequences
from ml.sorted_sets import values_at

QueryWeighting = Literal["uniform", "linear", "exponential"]
MatchWeighting = Literal["uniform", "inverse", "exponential"]
Similarity = Literal["cosine", "dot"]


def last_positions(sequences: Sequences, n_items: int) -> sp.csr_matrix:
    """rows x items: the 1-based position of each item's most recent occurrence in its row
    (float64, columns sorted); unknown items are dropped."""
    keep = sequences.items != UNKNOWN
    keys = sequences.row_of_each_item()[keep] * n_items + sequences.items[keep]
    positions = sequences.position_of_each_item()[keep] + 1
    # Reversed, the first occurrence of a key is its most recent one.
    unique, first = np.unique(keys[::-1], return_index=True)
    return sp.csr_matrix(
        (
            positions[::-1][first].astype(np.float64),
            (unique % n_items).astype(np.int32),
            indptr_of_rows(unique // n_items, len(sequences)),
        ),
        shape=(len(sequences), n_items),
    )


def train_positions(train: Sequences, n_items: int, family: str) -> sp.csr_matrix:
    """``last_positions`` of the train playlists, refusing a split with nothing to learn."""
    positions = last_positions(train, n_items)
    if positions.nnz == 0:
        raise CannotFit(f"{family}: the train split has no tracks ({len(train)} playlists)")
    if np.diff(positions.indptr).max() < 2:
        raise CannotFit(
            f"{family}: no train playlist has two different tracks, so no track co-occurs "
            "with another"
        )
    return positions


def _row_of_each_entry(matrix: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))


@dataclass(frozen=True)
class ItemKNNParams:
    neighbours: Annotated[int, Field(ge=1)] = 200  # most similar tracks kept per track
    alpha: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5  # 0.5: cosine; 1: P(next | query track)
    shrink: Annotated[float, Field(ge=0.0)] = 0.0  # damps similarities resting on few playlists
    window: Annotated[int, Field(ge=1, le=100)] | None = None
    last_n: int = ranking_only(5, ge=1)
    recency_decay: float = ranking_only(0.7, gt=0.0, le=1.0)

    @property
    def fit_name(self) -> str:
        base = f"n{self.neighbours}_a{self.alpha:g}"
        base += f"_s{self.shrink:g}" if self.shrink else ""
        return base + (f"_w{self.window}" if self.window else "")

    @property
    def name(self) -> str:
        base = f"{self.fit_name}_last{self.last_n}"
        return base + (f"_d{self.recency_decay:g}" if self.last_n > 1 else "")


class ItemKNN(Recommender):
    family = "item_knn"
    Params = ItemKNNParams
    block_items: ClassVar[int] = 2048  # tracks whose co-occurrence rows are built at once

    def __init__(self, params: ItemKNNParams, n_items: int):
        super().__init__(params, n_items)
        self.similarity = sp.csr_matrix((n_items, n_items), dtype=np.float32)

    def fit(self, train: Sequences, log: Log = no_log) -> None:
        playlists = train_positions(train, self.n_items, self.family)
        playlists.data[:] = 1.0
        if self.params.window is None:
            counts = np.asarray(playlists.sum(axis=0)).ravel()  # playlists holding each track
            by_item = playlists.T.tocsr()
            # A block of rows at a time: memory stays at a block's co-occurrences.
            blocks = [
                self._similar(by_item[start : start + self.block_items] @ playlists, start, counts)
                for start in range(0, self.n_items, self.block_items)
            ]
        else:
            counts = np.bincount(train.items, minlength=self.n_items)  # occurrences
            blocks = nearby_pairs(
                train,
                self.n_items,
                self.params.window,
                lambda _: 1.0,
                lambda start, co: self._similar(co, start, counts),
                both_directions=True,
            )
        self.similarity = sp.vstack(blocks, format="csr")
        log(f"{self.name}: {self.similarity.nnz:,} similarities over {self.n_items:,} tracks")

    def _similar(self, co: sp.csr_matrix, first: int, counts: np.ndarray) -> sp.csr_matrix:
        """Co-occurrence counts of tracks ``first..`` -> their kept similarities."""
        rows = _row_of_each_entry(co) + first
        cols = co.indices
        alpha, shrink = self.params.alpha, self.params.shrink
        co.data = co.data / (counts[rows] ** alpha * counts[cols] ** (1.0 - alpha) + shrink)
        co.data[rows == cols] = 0.0
        co.eliminate_zeros()
        return keep_top_per_row(co, self.params.neighbours)

    @property
    def score_width(self) -> int:
        return self.params.last_n * self.params.neighbours

    def score(self, queries: Queries) -> sp.csr_matrix:
        weights = recency_weighted_queries(
            queries.history.known(), self.n_items, self.params.last_n, self.params.recency_decay
        )
        return product(weights, self.similarity)

    def save_state(self, folder: Path) -> None:
        save_matrix(folder / "similarity.npz", self.similarity)

    def load_state(self, folder: Path) -> None:
        self.similarity = sp.load_npz(folder / "similarity.npz").tocsr()


@dataclass(frozen=True)
class SessionKNNParams:
    """Every field is a scoring field: one fit (the playlist index) serves every variant."""

    k: int = ranking_only(100, ge=1)  # neighbour playlists per query
    sample_size: int = ranking_only(1000, ge=1)  # most recent candidate playlists compared
    last_n: int = ranking_only(50, ge=1)  # query window: the last known tracks
    similarity: Similarity = ranking_only("cosine")
    query_weighting: QueryWeighting = ranking_only("uniform")
    lambda_position: float = ranking_only(1.0, gt=0.0)  # STAN lambda1, for exponential weighting
    lambda_recency: float | None = ranking_only(None, gt=0.0)  # STAN lambda2, in train-split units
    lambda_item_position: float | None = ranking_only(None, gt=0.0)  # STAN lambda3
    match_weighting: MatchWeighting = ranking_only("uniform")
    lambda_match: float = ranking_only(1.0, gt=0.0)  # VSTAN lambda_ipw, for exponential matching
    idf_weight: float = ranking_only(0.0, ge=0.0)  # V-SKNN / VSTAN lambda_idf

    @property
    def variant(self) -> str:
        """The published method these settings are an instance of."""
        plain = self.match_weighting == "uniform" and self.idf_weight == 0
        if self.lambda_recency is not None or self.lambda_item_position is not None:
            return "stan" if plain else "vstan"
        if plain and self.query_weighting == "uniform" and self.similarity == "cosine":
            return "sknn"
        return "vsknn"

    @property
    def fit_name(self) -> str:
        return "playlists"  # nothing to choose: the index of the train playlists

    @property
    def name(self) -> str:
        parts = [self.variant, f"k{self.k}", f"s{self.sample_size}", f"last{self.last_n}"]
        if self.similarity == "dot":
            parts.append("dot")
        if self.query_weighting == "linear":
            parts.append("qlin")
        elif self.query_weighting == "exponential":
            parts.append(f"qexp{self.lambda_position:g}")
        if self.lambda_recency is not None:
            parts.append(f"rec{self.lambda_recency:g}")
        if self.lambda_item_position is not None:
            parts.append(f"ipos{self.lambda_item_position:g}")
        if self.match_weighting == "inverse":
            parts.append("minv")
        elif self.match_weighting == "exponential":
            parts.append(f"mexp{self.lambda_match:g}")
        if self.idf_weight:
            parts.append(f"idf{self.idf_weight:g}")
        return "_".join(parts)


class SessionKNN(Recommender):
    family = "session_knn"
    Params = SessionKNNParams

    def __init__(self, params: SessionKNNParams, n_items: int):
        super().__init__(params, n_items)
        self._index(sp.csr_matrix((0, n_items), dtype=np.float64))

    @property
    def batch_size(self) -> int:
        """A batch holds every candidate playlist of its queries as well as their scores."""
        width = max(self.n_items, self.sessions.shape[0], 1)
        return int(np.clip(self.score_cells_per_batch // width, 16, 2048))

    def _index(self, sessions: sp.csr_matrix) -> None:
        """Train playlists x tracks holding positions, newest playlist first; the rest derives."""
        self.sessions = sessions
        self.session_lengths = np.diff(sessions.indptr)
        binary = sessions.copy()
        binary.data = np.ones_like(binary.data)
        self.item_sessions = binary.T.tocsr()  # which playlists hold each track
        playlists_with = np.bincount(sessions.indices, minlength=self.n_items)
        self.idf = np.log(max(sessions.shape[0], 1) / np.maximum(playlists_with, 1))

    def fit(self, train: Sequences, log: Log = no_log) -> None:
        self._index(train_positions(train, self.n_items, self.family)[::-1].tocsr())
        log(f"{self.family}: {self.sessions.shape[0]:,} playlists indexed")

    def score(self, queries: Queries) -> sp.csr_matrix:
        window = queries.history.known().last(self.params.last_n)
        positions = last_positions(window, self.n_items)
        lengths = window.lengths.astype(np.float64)
        weights = self._query_weights(positions, lengths)
        # Summed weights of the shared tracks of every playlist sharing one; columns are
        # playlists newest first, so the first columns of a row are the most recent candidates.
        overlap = product(weights, self.item_sessions)
        candidates = _first_per_row(overlap, self.params.sample_size)
        similarity = self._similarity(candidates, weights)
        # Columns ascend within rows, so equal similarities go to the more recent playlist.
        neighbours = _entries(similarity, _largest_per_row(similarity, self.params.k))
        return self._item_scores(neighbours, positions, lengths)

    def _query_weights(self, positions: sp.csr_matrix, lengths: np.ndarray) -> sp.csr_matrix:
        p = positions.data
        length = lengths[_row_of_each_entry(positions)]
        if self.params.query_weighting == "linear":
            w = p / length
        elif self.params.query_weighting == "exponential":
            w = np.exp((p - length) / self.params.lambda_position)
        else:
            w = np.ones_like(p)
        # Never exactly 0: a playlist sharing only a long-past track is still a candidate.
        w = np.maximum(w, np.finfo(np.float64).tiny)
        return sp.csr_matrix((w, positions.indices, positions.indptr), shape=positions.shape)

    def _similarity(self, candidates: sp.csr_matrix, weights: sp.csr_matrix) -> sp.csr_matrix:
        sessions = candidates.indices
        sim = candidates.data
        if self.params.similarity == "cosine":
            query_norm = np.sqrt(np.asarray(weights.multiply(weights).sum(axis=1)).ravel())
            rows = _row_of_each_entry(candidates)
            sim = sim / (query_norm[rows] * np.sqrt(self.session_lengths[sessions]))
        if self.params.lambda_recency is not None:
            age = sessions / self.sessions.shape[0]
            sim = sim * np.exp(-age / self.params.lambda_recency)
        return sp.csr_matrix((sim, sessions, candidates.indptr), shape=candidates.shape)

    def _item_scores(
        self, neighbours: sp.csr_matrix, positions: sp.csr_matrix, lengths: np.ndarray
    ) -> sp.csr_matrix:
        """Every track of every neighbour, weighted as the module doc says; heard tracks left
        out (they are never recommended)."""
        n_queries = positions.shape[0]
        pair_rows = _row_of_each_entry(neighbours)
        if len(pair_rows) == 0:
            return sp.csr_matrix((n_queries, self.n_items), dtype=np.float32)
        pair_sessions = neighbours.indices
        sizes = self.session_lengths[pair_sessions]
        pair_starts = np.cumsum(sizes) - sizes
        entry_pair = np.repeat(np.arange(len(pair_rows)), sizes)
        entry = np.repeat(self.sessions.indptr[pair_sessions] - pair_starts, sizes)
        entry += np.arange(len(entry))
        items = self.sessions.indices[entry].astype(np.int64)
        entry_rows = pair_rows[entry_pair]
        query_position = _lookup(positions, entry_rows, items)  # 0: not in the query
        latest = np.maximum.reduceat(query_position, pair_starts)  # >= 1: neighbours share one
        weight = neighbours.data * self._match_weights(latest, lengths[pair_rows])
        weight = weight[entry_pair]
        if self.params.lambda_item_position is not None:
            neighbour_position = self.sessions.data[entry]
            anchor = np.zeros(len(pair_rows))
            is_anchor = query_position == latest[entry_pair]
            anchor[entry_pair[is_anchor]] = neighbour_position[is_anchor]
            distance = np.abs(neighbour_position - anchor[entry_pair])
            weight = weight * np.exp(-distance / self.params.lambda_item_position)
        if self.params.idf_weight:
            weight = weight * (1.0 + self.params.idf_weight * self.idf[items])
        unheard = query_position == 0
        # A track in several neighbours: the duplicate entries are summed.
        return sp.csr_matrix(
            (weight[unheard], (entry_rows[unheard], items[unheard])),
            shape=(n_queries, self.n_items),
        )

    def _match_weights(self, latest: np.ndarray, length: np.ndarray) -> np.ndarray:
        if self.params.match_weighting == "inverse":
            return 1.0 / (length - latest + 1.0)
        if self.params.match_weighting == "exponential":
            return np.exp((latest - length) / self.params.lambda_match)
        return np.ones_like(latest)

    def save_state(self, folder: Path) -> None:
        save_matrix(folder / "sessions.npz", self.sessions)

    def load_state(self, folder: Path) -> None:
        self._index(sp.load_npz(folder / "sessions.npz").tocsr())


def _first_per_row(matrix: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """The entries of the ``keep`` lowest columns of each row, columns sorted."""
    matrix.sort_indices()
    rank = np.arange(matrix.nnz) - matrix.indptr[_row_of_each_entry(matrix)]
    return _entries(matrix, rank < keep)


def _largest_per_row(matrix: sp.csr_matrix, keep: int) -> np.ndarray:
    """Mask of the ``keep`` largest entries of each row (ties: the earlier entry). Rows longer
    than ``keep`` compete side by side in a padded block, a partition per row: several times
    faster than sorting every entry when rows are short (here at most ``sample_size``)."""
    lengths = np.diff(matrix.indptr)
    chosen = np.ones(matrix.nnz, dtype=bool)
    long_rows = np.flatnonzero(lengths > keep)
    if len(long_rows) == 0:
        return chosen
    rows = _row_of_each_entry(matrix)
    competing = lengths[rows] > keep
    block_row = np.searchsorted(long_rows, rows[competing])
    slot = (np.arange(matrix.nnz) - matrix.indptr[rows])[competing]
    width = int(lengths[long_rows].max())
    block = np.full((len(long_rows), width), -np.inf)
    block[block_row, slot] = matrix.data[competing]
    kth = np.partition(block, width - keep, axis=1)[:, width - keep, None]
    above, tied = block > kth, block == kth
    room = keep - above.sum(axis=1, keepdims=True)
    won = above | (tied & (np.cumsum(tied, axis=1) <= room))
    chosen[competing] = won[block_row, slot]
    return chosen


def _entries(matrix: sp.csr_matrix, chosen: np.ndarray) -> sp.csr_matrix:
    """The chosen entries of a CSR matrix, in their order."""
    indptr = indptr_of_rows(_row_of_each_entry(matrix)[chosen], matrix.shape[0])
    return sp.csr_matrix((matrix.data[chosen], matrix.indices[chosen], indptr), shape=matrix.shape)


def _lookup(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows, cols]`` for many pairs at once (0 where nothing is stored); columns must
    be sorted within rows."""
    keys = _row_of_each_entry(matrix) * matrix.shape[1] + matrix.indices
    return values_at(keys, matrix.data, rows * matrix.shape[1] + cols)


# Grids worth running: fit params, and the scoring variants one fit serves (``with_scoring``).
# Chosen on the validation splits of yes_small (short radio playlists: the whole playlist is the
# best query) and the 1M-row synthetic set (walks between fixed successors: the last track is),
# so the grid spans both; selection on validation picks per data set. Sizes stay where one
# variant evaluates 9,000 validation queries of a 1M-row run in well under a minute.
_STAN = {"query_weighting": "exponential", "lambda_position": 4.0, "lambda_item_position": 4.0}
# Building the whole-playlist item-item table and scoring session neighbours over whole playlists
# cost more than linearly in the playlists' lengths: on the full Kaggle file these units would
# outlast the pipeline's budget. Beyond this many train rows no neighbourhood unit runs: item-kNN
# within a window never joined the second stage there, and session-kNN on the last track, which
# did, cost more than it earned (docs/constants.md).
NEIGHBOURHOOD_MAX_TRAIN_ROWS = 3_000_000
ITEM_KNN_GRID = [
    {
        # alpha 0.9 (close to P(next | track)) beat plain cosine on both data sets.
        "params": {"neighbours": 200, "alpha": 0.9},
        "variants": [
            {"last_n": 1},
            {"last_n": 3, "recency_decay": 0.5},
            {"last_n": 10, "recency_decay": 0.9},
            {"last_n": 50, "recency_decay": 1.0},  # a whole history: the user-items query
        ],
        "max_train_rows": NEIGHBOURHOOD_MAX_TRAIN_ROWS,
    },
    {
        "params": {"neighbours": 200, "alpha": 0.5},
        "variants": [{"last_n": 1}, {"last_n": 10, "recency_decay": 0.9}],
        "max_train_rows": NEIGHBOURHOOD_MAX_TRAIN_ROWS,
    },
]

SESSION_KNN_GRID = [
    # STAN around the last track: neighbours of the recent tracks, near them. The cheapest
    # variant, and the strongest on successor-driven data.
    {
        "params": {},
        "variants": [{"k": 100, "sample_size": 1000, "last_n": 1, "lambda_item_position": 1.0}],
        "label": "last_track",
        "max_train_rows": NEIGHBOURHOOD_MAX_TRAIN_ROWS,
    },
    {
        "params": {},
        "variants": [
            # SKNN, Jannach & Ludewig 2017: k 100 of the 1,000 most recent; and wider.
            {"k": 100, "sample_size": 1000},
            {"k": 200, "sample_size": 2000},
            # V-SKNN as published (session-rec's "div" weighting and "div_score" matching).
            {
                "k": 100,
                "sample_size": 1000,
                "similarity": "dot",
                "query_weighting": "linear",
                "match_weighting": "inverse",
            },
            # STAN: lambda1 = lambda3 = 4 tracks (the paper searches multiples of the mean
            # session length); lambda2 on the row-order time proxy, where it can only help if
            # the source order tracks time.
            {"k": 100, "sample_size": 1000, **_STAN},
            {"k": 100, "sample_size": 1000, **_STAN, "lambda_recency": 1.0},
            {
                "k": 200,
                "sample_size": 2000,
                "last_n": 3,
                "query_weighting": "exponential",
                "lambda_position": 1.0,
                "lambda_item_position": 1.0,
            },
            # VSTAN, Ludewig et al. 2021: STAN with V-SKNN's matching and a light IDF.
            {
                "k": 100,
                "sample_size": 1000,
                **_STAN,
                "match_weighting": "exponential",
                "lambda_match": 4.0,
                "idf_weight": 0.25,
            },
        ],
        "label": "whole_playlist",
        "max_train_rows": NEIGHBOURHOOD_MAX_TRAIN_ROWS,
    },
]
