"""What the reranker knows about a (query, candidate) pair, computed without the query's label.

The candidates of a query are the union of its components' lists (the pool), heard items left
out. Each pair gets: every component's score, its score min-max normalised within the query, its
rank and whether it proposed the item at all; how many components proposed it; the item's log
train count; how often it followed (transitions) or sat near (co-occurrence) the last 1, 3 and 5
tracks of the query in train; how many query tracks share its artist, and whether the last one
does; the query's length; and, given Word2Vec vectors, its cosine to the last track and to the
query's mean. Missing values are NaN, which LightGBM treats as missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ml.recommenders.base import ItemVectors, Queries, TopK
from ml.recommenders.sparse import keep_top_per_row, nearby_pairs
from ml.recommenders.topk import normalise_rows
from ml.sequences import UNKNOWN, Sequences, entries_of_rows
from ml.sorted_sets import isin, unique, values_at

RECENT = (1, 3, 5)  # the last tracks transitions and co-occurrence are counted from
COSINE_BLOCK = 262_144  # (query, candidate) pairs whose vectors are gathered at once


@dataclass(frozen=True)
class TrainStatistics:
    """Counts from the train split the features look up."""

    counts: np.ndarray  # (n_items,) plays
    transitions: sp.csr_matrix  # items x items: b directly after a
    cooccurrence: sp.csr_matrix  # items x items: a and b within ``window`` positions
    artists: np.ndarray  # (n_items,) int32 artist code, -1 unknown

    @classmethod
    def of(
        cls, train: Sequences, n_items: int, artists: np.ndarray, window: int, keep_per_row: int
    ) -> TrainStatistics:
        counts = np.bincount(train.items[train.items >= 0], minlength=n_items)
        return cls(
            counts=counts.astype(np.int64),
            transitions=_pairs(train, n_items, 1, False, keep_per_row),
            cooccurrence=_pairs(train, n_items, window, True, keep_per_row),
            artists=np.asarray(artists, dtype=np.int32),
        )


def _pairs(train: Sequences, n_items: int, distance: int, both: bool, keep: int) -> sp.csr_matrix:
    """Pair counts, each row pruned to its ``keep`` largest (the popular tracks' rows at scale)."""
    blocks = nearby_pairs(
        train,
        n_items,
        distance,
        lambda d: 1.0,
        lambda _, block: keep_top_per_row(block, keep),
        both,
    )
    if not blocks:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    return sp.csr_matrix(sp.vstack(blocks, format="csr"), dtype=np.float32)


@dataclass(frozen=True)
class Pool:
    """The candidates of a batch of queries: entry e is item ``items[e]`` for query ``rows[e]``,
    sorted by query then item."""

    rows: np.ndarray  # (E,) int64
    items: np.ndarray  # (E,) int64
    n_queries: int

    @classmethod
    def of(cls, lists: list[TopK], history: Sequences, n_items: int) -> Pool:
        keys = unique(np.concatenate([top.item_keys(n_items) for top in lists]))
        keys = keys[~isin(keys, history.known_item_keys(n_items))]
        return cls(keys // n_items, keys % n_items, len(history))

    def keys(self, n_items: int) -> np.ndarray:
        return self.rows * n_items + self.items

    def labelled(self, labels: Sequences, n_items: int) -> np.ndarray:
        """1 for the entries that are a relevant item of their query, else 0."""
        return isin(self.keys(n_items), labels.known_item_keys(n_items)).astype(np.float32)

    def take(self, entries: np.ndarray) -> Pool:
        return Pool(self.rows[entries], self.items[entries], self.n_queries)


def feature_names(components: list[str], with_vectors: bool) -> list[str]:
    per_list = [
        f"{c}_{what}" for c in components for what in ("score", "normalised", "rank", "missing")
    ]
    recent = [f"{kind}_last_{n}" for kind in ("transitions", "cooccurrence") for n in RECENT]
    vectors = ["word2vec_cosine_last", "word2vec_cosine_mean"] if with_vectors else []
    return [
        *per_list,
        "proposed_by",
        "log_popularity",
        *recent,
        "same_artist_tracks",
        "same_artist_as_last",
        "query_length",
        *vectors,
    ]


def pool_features(
    lists: list[TopK],
    queries: Queries,
    statistics: TrainStatistics,
    vectors: ItemVectors | None,
) -> tuple[Pool, np.ndarray]:
    """The pool of ``lists`` (one per component, for ``queries``) and its features, in the order
    of ``feature_names``. Reads the queries' histories only: labels are nowhere in reach."""
    n_items = len(statistics.counts)
    history = queries.history
    pool = Pool.of(lists, history, n_items)
    keys = pool.keys(n_items)
    columns: list[np.ndarray] = []
    proposed_by = np.zeros(len(keys), dtype=np.float32)
    for top in lists:
        score, normalised, rank = _list_features(top, keys, n_items)
        missing = np.isnan(rank)
        proposed_by += ~missing
        columns += [score, normalised, rank, missing.astype(np.float32)]
    columns += [proposed_by, np.log1p(statistics.counts[pool.items]).astype(np.float32)]
    known = history.known()
    for matrix in (statistics.transitions, statistics.cooccurrence):
        columns += _recent_counts(known, pool, matrix)
    columns += _artist_features(known, pool, statistics.artists)
    columns.append(history.lengths[pool.rows].astype(np.float32))
    if vectors is not None:
        columns += _cosines(known, pool, vectors)
    return pool, np.column_stack(columns).astype(np.float32)


def _list_features(
    top: TopK, keys: np.ndarray, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score, per-query normalised score and 1-based rank of each pool entry in one list; NaN
    where the list does not hold it."""
    depth = top.ids.shape[1]
    list_keys = np.repeat(np.arange(len(top), dtype=np.int64), depth) * n_items + top.ids.reshape(
        -1
    ).astype(np.int64)
    valid = top.ids.reshape(-1) != UNKNOWN
    at = np.searchsorted(keys, list_keys)
    inside = valid & (at < len(keys))
    inside[inside] = keys[at[inside]] == list_keys[inside]  # heard items are not in the pool
    score = np.full(len(keys), np.nan, dtype=np.float32)
    normalised = np.full(len(keys), np.nan, dtype=np.float32)
    rank = np.full(len(keys), np.nan, dtype=np.float32)
    score[at[inside]] = top.scores.reshape(-1)[inside]
    normalised[at[inside]] = normalise_rows(top.scores).reshape(-1)[inside]
    rank[at[inside]] = np.tile(np.arange(1, depth + 1, dtype=np.float32), len(top))[inside]
    return score, normalised, rank


def _recent_counts(known: Sequences, pool: Pool, counts: sp.csr_matrix) -> list[np.ndarray]:
    """For each n in ``RECENT``: the sum of ``counts[t, item]`` over the last n tracks t of each
    entry's query. Only the rows of those tracks are read, each (entry, track) pair looked up by
    a binary search: no product of sparse matrices, whose set-up cost more than the arithmetic
    when one request is served. The counts are whole numbers far below 2**24, so the sums are
    exact in float32 in any order."""
    n_items = counts.shape[1]
    last = known.last(max(RECENT))
    used, local = np.unique(last.items, return_inverse=True)
    where, lengths = entries_of_rows(counts.indptr, used)
    stored = np.repeat(np.arange(len(used), dtype=np.int64), lengths) * n_items
    stored += counts.indices[where]
    if np.any(stored[1:] <= stored[:-1]):  # a matrix whose rows are not sorted by column
        where = where[np.argsort(stored, kind="stable")]
        stored.sort()
    values = counts.data[where]
    depth = max(RECENT)
    track_at_age = np.full((pool.n_queries, depth), -1, dtype=np.int64)
    track_at_age[last.row_of_each_item(), last.age_of_each_item()] = local
    total = np.zeros(len(pool.items), dtype=np.float32)
    sums = []
    for age in range(depth):
        track = track_at_age[pool.rows, age]
        has = track >= 0
        total[has] += values_at(stored, values, track[has] * n_items + pool.items[has])
        if age + 1 in RECENT:
            sums.append(total.copy())
    return sums


def _artist_features(known: Sequences, pool: Pool, artists: np.ndarray) -> list[np.ndarray]:
    candidate_artist = artists[pool.items]
    query_artists = artists[known.items]
    credited = query_artists >= 0
    query_keys, tracks = np.unique(
        _query_artist_keys(known.row_of_each_item()[credited], query_artists[credited]),
        return_counts=True,
    )
    has_artist = candidate_artist >= 0
    same = np.zeros(len(pool.items), dtype=np.float32)
    same[has_artist] = values_at(
        query_keys,
        tracks,
        _query_artist_keys(pool.rows[has_artist], candidate_artist[has_artist]),
    )
    last = known.last(1)
    last_artist = np.full(pool.n_queries, -1, dtype=np.int32)
    last_artist[last.row_of_each_item()] = artists[last.items]
    as_last = has_artist & (last_artist[pool.rows] == candidate_artist)
    return [same, as_last.astype(np.float32)]


def _query_artist_keys(rows: np.ndarray, artist_codes: np.ndarray) -> np.ndarray:
    """(query row, artist) as one int64 key, ordered as the pairs are. The multiplier bounds any
    int32 code, so no request reads the catalogue-long ``artists`` for its largest."""
    return rows.astype(np.int64) * 2**31 + artist_codes


def _cosines(known: Sequences, pool: Pool, vectors: ItemVectors) -> list[np.ndarray]:
    compact = Sequences(vectors.compact_of[known.items], known.offsets).known()
    dimensions = vectors.unit.shape[1]
    mean = np.zeros((pool.n_queries, dimensions), dtype=np.float32)
    np.add.at(mean, compact.row_of_each_item(), vectors.unit[compact.items])
    norms = np.linalg.norm(mean, axis=1, keepdims=True)
    mean /= np.where(norms == 0, 1, norms)
    last = compact.last(1)
    last_vector = np.zeros((pool.n_queries, dimensions), dtype=np.float32)
    last_vector[last.row_of_each_item()] = vectors.unit[last.items]
    candidate = vectors.compact_of[pool.items]
    embedded = candidate >= 0
    has_query = np.bincount(compact.row_of_each_item(), minlength=pool.n_queries) > 0
    usable = embedded & has_query[pool.rows]
    entries = np.flatnonzero(usable)
    out = []
    for query_vectors in (last_vector, mean):
        cosine = np.full(len(pool.items), np.nan, dtype=np.float32)
        # A block of entries at a time: two vectors per entry would be gigabytes at scale.
        for start in range(0, len(entries), COSINE_BLOCK):
            block = entries[start : start + COSINE_BLOCK]
            cosine[block] = np.einsum(
                "ij,ij->i", query_vectors[pool.rows[block]], vectors.unit[candidate[block]]
            )
        out.append(cosine)
    return out
