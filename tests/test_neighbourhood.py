"""Item-kNN and the session-kNN family (SKNN, V-SKNN, STAN, VSTAN): hand-computed toy cases,
slow reference loops on a random corpus, scoring variants, persistence and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from pydantic import ValidationError

from ml.evaluation.candidates import CandidateSpec
from ml.recommenders import base
from ml.recommenders.base import CannotFit, Queries
from ml.recommenders.families import create, load_recommender
from ml.recommenders.neighbourhood import (
    ITEM_KNN_GRID,
    SESSION_KNN_GRID,
    ItemKNN,
    ItemKNNParams,
    SessionKNN,
    SessionKNNParams,
)
from ml.recommenders.sparse import nearby_pairs, product
from ml.sequences import UNKNOWN, Sequences

A, B, C, D, E, F, G = range(7)


def queries(*histories: list[int]) -> Queries:
    return Queries(Sequences.from_lists(histories))


def fitted(family: type, train: list[list[int]], n_items: int = 7, **params):
    model = family(family.Params(**params), n_items)
    model.fit(Sequences.from_lists(train))
    return model


# --- item-kNN ---------------------------------------------------------------------------------
# Playlists a b c | a b | b c d | a c. Counts: a 3, b 3, c 3, d 1.
# Co-occurrence: ab 2 (P0, P1), ac 2 (P0, P3), bc 2 (P0, P2), bd 1, cd 1, ad 0.
# Cosine co / sqrt(count_i * count_j): ab = ac = bc = 2/3; bd = cd = 1/sqrt(3) = 0.57735.
ITEM_TRAIN = [[A, B, C], [A, B], [B, C, D], [A, C]]


def test_item_knn_sums_recency_weighted_cosine_similarities():
    model = fitted(ItemKNN, ITEM_TRAIN, 4, last_n=2, recency_decay=0.5)
    # Query d, b: b (most recent) weighs 1, d weighs 0.5.
    # a: 1 * sim(b, a) + 0.5 * sim(d, a) = 2/3 + 0          = 0.66667
    # c: 1 * sim(b, c) + 0.5 * sim(d, c) = 2/3 + 0.5 * 0.57735 = 0.95534
    top = model.top_k(queries([D, B]), 3)
    assert top.ids.tolist() == [[C, A, UNKNOWN]]  # b and d heard; nothing else has evidence
    assert top.scores[0, :2] == pytest.approx([2 / 3 + 0.5 / math.sqrt(3), 2 / 3])
    assert top.scores[0, 2] == -np.inf


def test_item_knn_alpha_shrink_and_neighbour_pruning():
    query = queries([B])
    # alpha 0: co / count_j favours the rare d: d = 1/1, a = c = 2/3.
    rare = fitted(ItemKNN, ITEM_TRAIN, 4, alpha=0.0, last_n=1).top_k(query, 3)
    assert rare.ids.tolist() == [[D, A, C]]
    assert rare.scores[0] == pytest.approx([1.0, 2 / 3, 2 / 3])
    # alpha 1: co / count_i = P(j | b): a = c = 2/3, d = 1/3.
    conditional = fitted(ItemKNN, ITEM_TRAIN, 4, alpha=1.0, last_n=1).top_k(query, 3)
    assert conditional.scores[0] == pytest.approx([2 / 3, 2 / 3, 1 / 3])
    # shrink 1: ab = 2 / (sqrt(3 * 3) + 1) = 0.5; bd = 1 / (sqrt(3) + 1) = 0.36603.
    shrunk = fitted(ItemKNN, ITEM_TRAIN, 4, shrink=1.0, last_n=1).top_k(query, 3)
    assert shrunk.scores[0] == pytest.approx([0.5, 0.5, 1 / (math.sqrt(3) + 1)])
    # One neighbour per track: b keeps a (tied with c at 2/3, lower id first).
    pruned = fitted(ItemKNN, ITEM_TRAIN, 4, neighbours=1, last_n=1).top_k(query, 3)
    assert pruned.ids.tolist() == [[A, UNKNOWN, UNKNOWN]]


# --- SKNN --------------------------------------------------------------------------------------
# Train, oldest first: S0 a b c | S1 b c d | S2 a e | S3 c d e f. Query a b (|q| = 2).
# Cosine |q & n| / sqrt(|q| |n|): S0 2/sqrt(6) = 0.81650, S1 1/sqrt(6) = 0.40825,
# S2 1/sqrt(4) = 0.5; S3 shares nothing, so it is no candidate.
SKNN_TRAIN = [[A, B, C], [B, C, D], [A, E], [C, D, E, F]]


def test_sknn_scores_tracks_by_summed_neighbour_similarity():
    model = fitted(SessionKNN, SKNN_TRAIN)
    assert model.params.name.startswith("sknn_")
    # c: S0 + S1 = 1.22474; e: S2 = 0.5; d: S1 = 0.40825; f: in no neighbour.
    top = model.top_k(queries([A, B]), 4)
    assert top.ids.tolist() == [[C, E, D, UNKNOWN]]
    assert top.scores[0, :3] == pytest.approx([3 / math.sqrt(6), 0.5, 1 / math.sqrt(6)])


def test_sknn_keeps_k_most_similar_among_the_most_recent_candidates():
    model = fitted(SessionKNN, SKNN_TRAIN)
    # k = 2: neighbours S0 (0.81650) and S2 (0.5); d (only in S1) drops out.
    top = model.with_scoring(k=2).top_k(queries([A, B]), 3)
    assert top.ids.tolist() == [[C, E, UNKNOWN]]
    assert top.scores[0, :2] == pytest.approx([2 / math.sqrt(6), 0.5])
    # sample_size = 2: only the two most recent candidates, S2 and S1 (S0 is older):
    # e = 0.5, c = d = 0.40825 (tie: lower id first).
    top = model.with_scoring(sample_size=2).top_k(queries([A, B]), 3)
    assert top.ids.tolist() == [[E, C, D]]
    assert top.scores[0] == pytest.approx([0.5, 1 / math.sqrt(6), 1 / math.sqrt(6)])


# --- V-SKNN, STAN, VSTAN on a three-track query ------------------------------------------------
# Train, oldest first: S0 d a e | S1 b f g c | S2 c e d. Query a b c (positions 1, 2, 3; L = 3).
SEQUENCE_TRAIN = [[D, A, E], [B, F, G, C], [C, E, D]]
STAN = {
    "query_weighting": "exponential",
    "lambda_position": 1.0,
    "lambda_recency": 1.0,
    "lambda_item_position": 1.0,
}


def test_vsknn_linear_weights_dot_similarity_and_inverse_match():
    model = fitted(
        SessionKNN,
        SEQUENCE_TRAIN,
        query_weighting="linear",
        similarity="dot",
        match_weighting="inverse",
    )
    assert model.params.variant == "vsknn"
    # Weights p / L: a 1/3, b 2/3, c 1. Dot similarity: S0 1/3 (a), S1 5/3 (b, c), S2 1 (c).
    # Match 1 / (L - p* + 1), p* the query position of the most recent shared track:
    # S0 p* = 1 -> 1/3; S1 and S2 p* = 3 -> 1.
    # d, e: S0 1/3 * 1/3 + S2 1 = 10/9; f, g: S1 5/3.
    top = model.top_k(queries([A, B, C]), 4)
    assert top.ids.tolist() == [[F, G, D, E]]
    assert top.scores[0] == pytest.approx([5 / 3, 5 / 3, 10 / 9, 10 / 9])


def test_stan_weights_query_position_neighbour_recency_and_item_distance():
    model = fitted(SessionKNN, SEQUENCE_TRAIN, **STAN)
    assert model.params.variant == "stan"
    # Weights exp((p - L) / 1): a e^-2 = 0.135335, b e^-1 = 0.367879, c 1; ||w|| = 1.074087.
    # Weighted cosine sum(w shared) / (||w|| sqrt|n|), times recency exp(-age / 1) with age =
    # newer train playlists / 3:
    # S0: 0.135335 / (1.074087 * sqrt 3) = 0.072746, age 2/3 (x 0.513417) -> 0.037349
    # S1: 1.367879 / (1.074087 * 2)      = 0.636761, age 1/3 (x 0.716531) -> 0.456262
    # S2: 1        / (1.074087 * sqrt 3) = 0.537524, age 0                -> 0.537524
    # Item distance exp(-|pos(j, n) - pos(i*, n)| / 1), i* the query's most recent shared track:
    # S0: i* = a at 2: d (1) and e (3) are 1 away -> 0.367879 each.
    # S1: i* = c at 4: f (2) is 2 away -> 0.135335, g (3) 1 away -> 0.367879.
    # S2: i* = c at 1: e (2) 1 away -> 0.367879, d (3) 2 away -> 0.135335.
    # e: 0.037349 * 0.367879 + 0.537524 * 0.367879 = 0.211484
    # g: 0.456262 * 0.367879                        = 0.167849
    # d: 0.037349 * 0.367879 + 0.537524 * 0.135335 = 0.086486
    # f: 0.456262 * 0.135335                        = 0.061748
    top = model.top_k(queries([A, B, C]), 5)
    assert top.ids.tolist() == [[E, G, D, F, UNKNOWN]]
    assert top.scores[0, :4] == pytest.approx([0.211484, 0.167849, 0.086486, 0.061748], rel=1e-4)


def test_vstan_adds_match_weighting_and_idf():
    model = fitted(
        SessionKNN, SEQUENCE_TRAIN, **STAN, match_weighting="exponential", idf_weight=1.0
    )
    assert model.params.variant == "vstan"
    # STAN's terms, times match exp((p* - L) / 1): S0 (p* = 1) e^-2 = 0.135335, S1, S2 1;
    # times 1 + idf, idf = ln(3 playlists / playlists with the track): d, e in 2 -> 1.405465,
    # f, g in 1 -> 2.098612.
    # g: 0.167849 * 2.098612                                        = 0.352250
    # e: (0.037349 * 0.135335 * 0.367879 + 0.197744) * 1.405465     = 0.280536
    # f: 0.061748 * 2.098612                                        = 0.129585
    # d: (0.037349 * 0.135335 * 0.367879 + 0.072746) * 1.405465     = 0.104855
    top = model.top_k(queries([A, B, C]), 4)
    assert top.ids.tolist() == [[G, E, F, D]]
    assert top.scores[0] == pytest.approx([0.352250, 0.280536, 0.129585, 0.104855], rel=1e-4)


def test_unknown_and_empty_queries_get_no_evidence_and_unknowns_are_skipped():
    model = fitted(SessionKNN, SKNN_TRAIN)
    top = model.top_k(queries([], [UNKNOWN], [A, UNKNOWN, B]), 3)
    assert top.ids[:2].tolist() == [[UNKNOWN] * 3] * 2
    assert top.ids[2].tolist() == [C, E, D]  # as for the query a b


# --- every family against a slow reference loop on a random corpus -----------------------------
N_ITEMS = 40


def random_corpus(seed: int = 7) -> tuple[list[list[int]], list[list[int]]]:
    """Train playlists (some with repeats) and queries (some with repeats and unknowns)."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, N_ITEMS + 1)
    popularity /= popularity.sum()

    def playlist(max_length: int) -> list[int]:
        return rng.choice(N_ITEMS, size=rng.integers(1, max_length + 1), p=popularity).tolist()

    train = [playlist(8) for _ in range(150)]
    history = [playlist(7) for _ in range(60)]
    for h in history[::5]:
        h.insert(int(rng.integers(0, len(h) + 1)), UNKNOWN)
    return train, history


def most_recent_positions(sequence: list[int]) -> dict[int, int]:
    """1-based position of each known item's most recent occurrence."""
    known = [i for i in sequence if i != UNKNOWN]
    return {item: p for p, item in enumerate(known, start=1)}


def reference_item_knn(train, history, params: ItemKNNParams) -> np.ndarray:
    if params.window is None:  # playlists holding i; holding both
        sets = [set(p) for p in train]
        count = {i: sum(i in s for s in sets) for i in range(N_ITEMS)}

        def co_occurrences(i: int, j: int) -> int:
            return sum(i in s and j in s for s in sets)
    else:  # occurrences of i; pairs of positions at most `window` apart holding i and j
        count = {i: sum(p.count(i) for p in train) for i in range(N_ITEMS)}

        def co_occurrences(i: int, j: int) -> int:
            return sum(
                p[x] == i and p[y] == j
                for p in train
                for x in range(len(p))
                for y in range(len(p))
                if 0 < abs(x - y) <= params.window
            )

    similar = {}
    for i in range(N_ITEMS):
        row = {}
        for j in range(N_ITEMS):
            co = co_occurrences(i, j)
            if i != j and co:
                norm = count[i] ** params.alpha * count[j] ** (1 - params.alpha) + params.shrink
                row[j] = np.float32(co / norm)
        similar[i] = dict(sorted(row.items(), key=lambda x: (-x[1], x[0]))[: params.neighbours])
    scores = np.zeros((len(history), N_ITEMS))
    for q, h in enumerate(history):
        recent = [i for i in h if i != UNKNOWN][-params.last_n :]
        for age, i in enumerate(reversed(recent)):
            for j, s in similar[i].items():
                scores[q, j] += params.recency_decay**age * s
    return scores


def reference_session_knn(train, history, params: SessionKNNParams) -> np.ndarray:
    n = len(train)
    sets = [set(p) for p in train]
    positions = [most_recent_positions(p) for p in train]
    idf = {i: math.log(n / max(1, sum(i in s for s in sets))) for i in range(N_ITEMS)}
    scores = np.zeros((len(history), N_ITEMS))
    for q, h in enumerate(history):
        window = [i for i in h if i != UNKNOWN][-params.last_n :]
        if not window:
            continue
        length = len(window)
        query = most_recent_positions(window)
        if params.query_weighting == "uniform":
            w = {i: 1.0 for i in query}
        elif params.query_weighting == "linear":
            w = {i: p / length for i, p in query.items()}
        else:
            w = {i: math.exp((p - length) / params.lambda_position) for i, p in query.items()}
        norm = math.sqrt(sum(x * x for x in w.values()))
        candidates = [s for s in reversed(range(n)) if sets[s] & set(query)][: params.sample_size]
        neighbours = []
        for s in candidates:
            sim = sum(w[i] for i in sets[s] & set(query))
            if params.similarity == "cosine":
                sim /= norm * math.sqrt(len(sets[s]))
            if params.lambda_recency is not None:
                sim *= math.exp(-((n - 1 - s) / n) / params.lambda_recency)
            neighbours.append((sim, s))
        # Ties (to 12 digits, as summation order differs): the more recent playlist.
        neighbours.sort(key=lambda x: (-round(x[0], 12), -x[1]))
        for sim, s in neighbours[: params.k]:
            anchor = max(sets[s] & set(query), key=lambda i: query[i])
            latest = query[anchor]
            if params.match_weighting == "inverse":
                match = 1.0 / (length - latest + 1)
            elif params.match_weighting == "exponential":
                match = math.exp((latest - length) / params.lambda_match)
            else:
                match = 1.0
            for j in sets[s] - set(query):
                near = 1.0
                if params.lambda_item_position is not None:
                    distance = abs(positions[s][j] - positions[s][anchor])
                    near = math.exp(-distance / params.lambda_item_position)
                scores[q, j] += sim * match * near * (1 + params.idf_weight * idf[j])
    return scores


def reference_top_k(scores: np.ndarray, history: list[list[int]], k: int) -> list[list[int]]:
    result = []
    for row, h in zip(scores, history, strict=True):
        ranked = [j for j in np.lexsort((np.arange(N_ITEMS), -row)) if row[j] > 0 and j not in h]
        result.append((ranked[:k] + [UNKNOWN] * k)[:k])
    return result


@pytest.mark.parametrize("both_directions", [False, True])
def test_nearby_pairs_sum_every_pair_within_the_distance_block_by_block(both_directions):
    train, _ = random_corpus()
    expected = np.zeros((N_ITEMS, N_ITEMS))
    for p in train:
        for x in range(len(p)):
            for y in range(x + 1, min(x + 3, len(p) - 1) + 1):  # distance 1..3
                expected[p[x], p[y]] += 1.0 / (y - x)
                if both_directions:
                    expected[p[y], p[x]] += 1.0 / (y - x)
    sequences = Sequences.from_lists(train)

    def blocks_of(block_entries: int) -> list[tuple[int, sp.csr_matrix]]:
        return nearby_pairs(
            sequences,
            N_ITEMS,
            3,
            lambda d: 1.0 / d,
            lambda first, block: (first, block),
            both_directions,
            block_entries,
        )

    blocks = blocks_of(50)
    assert len(blocks) > 3  # small blocks, built on threads: in order, each where the last ended
    got = sp.vstack([block for _, block in blocks]).toarray()
    assert [first for first, _ in blocks] == list(
        np.cumsum([0] + [b.shape[0] for _, b in blocks])[:-1]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    ((_, whole),) = blocks_of(10**9)  # one block: the same sums, bit for bit
    assert np.array_equal(whole.toarray(), got)


ITEM_VARIANTS = [
    {"last_n": 1},
    {"neighbours": 5, "last_n": 3, "recency_decay": 0.5},
    {"alpha": 0.8, "shrink": 2.0, "last_n": 10, "recency_decay": 1.0},
    {"window": 2, "neighbours": 6, "last_n": 3, "recency_decay": 0.5},
]
SESSION_VARIANTS = [
    {},
    {"k": 5, "sample_size": 20},
    {"k": 10, "last_n": 3, "query_weighting": "linear", "similarity": "dot"},
    {"match_weighting": "inverse", "idf_weight": 0.5, "query_weighting": "linear"},
    {**STAN, "k": 8, "sample_size": 40, "lambda_position": 2.0, "lambda_item_position": 1.5},
    {**STAN, "match_weighting": "exponential", "lambda_match": 2.0, "idf_weight": 1.0},
]


@pytest.mark.parametrize(
    ("family", "params", "reference"),
    [(ItemKNN, v, reference_item_knn) for v in ITEM_VARIANTS]
    + [(SessionKNN, v, reference_session_knn) for v in SESSION_VARIANTS],
)
def test_vectorised_scores_equal_the_reference_loop(family, params, reference):
    train, history = random_corpus()
    model = fitted(family, train, N_ITEMS, **params)
    model.score_cells_per_batch = 1  # the smallest batches: 16 queries
    expected = reference(train, history, model.params)
    assert expected.any(axis=1).sum() > 40  # most queries have evidence
    got = np.vstack([model.score(queries(*history[i : i + 16])).toarray() for i in (0, 16, 32, 48)])
    heard = np.zeros_like(got, dtype=bool)
    for q, h in enumerate(history):
        heard[q, [i for i in h if i != UNKNOWN]] = True
    got[heard] = expected[heard] = 0.0  # scores of heard tracks may exist; top_k drops them
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    top = model.top_k(queries(*history), 10)
    want = np.array(reference_top_k(expected, history, 10))
    assert ((top.ids == UNKNOWN) == (want == UNKNOWN)).all()
    # The same tracks in the same order, up to tracks whose scores tie but for rounding.
    rows = np.arange(len(history))[:, None]
    np.testing.assert_allclose(expected[rows, top.ids], expected[rows, want], rtol=1e-6)
    assert (top.ids == want).mean() > 0.95
    for ids, h in zip(top.ids.tolist(), history, strict=True):
        assert not (set(ids) - {UNKNOWN}) & set(h)  # heard tracks are never recommended


# --- scoring variants, persistence --------------------------------------------------------------
@pytest.mark.parametrize(
    ("family", "fit_params", "changes"),
    [
        (ItemKNN, {"neighbours": 10}, {"last_n": 4, "recency_decay": 0.6}),
        (SessionKNN, {}, {**STAN, "k": 7, "sample_size": 30, "idf_weight": 2.0}),
        (SessionKNN, {}, {"query_weighting": "linear", "match_weighting": "inverse"}),
    ],
)
def test_with_scoring_ranks_like_a_fresh_fit(family, fit_params, changes):
    train, history = random_corpus(seed=3)
    view = fitted(family, train, N_ITEMS, **fit_params).with_scoring(**changes)
    fresh = fitted(family, train, N_ITEMS, **fit_params, **changes)
    assert view.params == fresh.params
    got, want = view.top_k(queries(*history), 10), fresh.top_k(queries(*history), 10)
    assert got.ids.tolist() == want.ids.tolist()
    np.testing.assert_array_equal(got.scores, want.scores)


@pytest.mark.parametrize("family", [ItemKNN, SessionKNN])
def test_top_k_is_the_same_on_one_thread_and_several(monkeypatch, family):
    train, history = random_corpus()
    model = fitted(family, train, N_ITEMS)
    model.score_cells_per_batch = 1  # 16 queries a batch: 4 batches for 4 threads
    many = queries(*history)
    monkeypatch.setattr(base, "SCORING_THREADS", 1)
    alone = model.top_k(many, 10)
    monkeypatch.setattr(base, "SCORING_THREADS", 4)
    threaded = model.top_k(many, 10)
    assert (alone.ids >= 0).sum() > 300
    np.testing.assert_array_equal(threaded.ids, alone.ids)
    np.testing.assert_array_equal(threaded.scores, alone.scores)


def test_with_scoring_refuses_fit_params():
    model = fitted(ItemKNN, ITEM_TRAIN, 4)
    with pytest.raises(ValueError, match="neighbours"):
        model.with_scoring(neighbours=3)


@pytest.mark.parametrize(
    ("family", "params"),
    [("item_knn", {"neighbours": 12, "alpha": 0.7, "last_n": 3}), ("session_knn", STAN)],
)
def test_save_and_load_give_identical_top_k(tmp_path, family, params):
    train, history = random_corpus(seed=5)
    model = create(family, params, N_ITEMS)
    model.fit(Sequences.from_lists(train))
    model.save(tmp_path / "model")
    loaded = load_recommender(tmp_path / "model")
    assert type(loaded) is type(model) and loaded.params == model.params
    before, after = model.top_k(queries(*history), 20), loaded.top_k(queries(*history), 20)
    assert before.ids.tolist() == after.ids.tolist()
    np.testing.assert_array_equal(before.scores, after.scores)


@pytest.mark.parametrize(
    ("family", "grid"), [("item_knn", ITEM_KNN_GRID), ("session_knn", SESSION_KNN_GRID)]
)
def test_default_grids_are_valid_candidates(family, grid):
    for entry in grid:
        spec = CandidateSpec(family, entry["params"], entry["variants"])
        spec.validate()
        model = spec.recommender(5)
        names = {model.with_scoring(**variant).name for variant in entry["variants"]}
        assert len(names) == len(entry["variants"])  # every variant ranks differently


# --- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("family", "field", "value"),
    [
        ("item_knn", "neighbours", 0),
        ("item_knn", "alpha", 1.5),
        ("item_knn", "shrink", -1.0),
        ("item_knn", "last_n", 0),
        ("item_knn", "recency_decay", -0.5),
        ("session_knn", "k", 0),
        ("session_knn", "sample_size", 0),
        ("session_knn", "last_n", 0),
        ("session_knn", "lambda_position", -1.0),
        ("session_knn", "lambda_recency", 0.0),
        ("session_knn", "lambda_item_position", -2.0),
        ("session_knn", "lambda_match", 0.0),
        ("session_knn", "idf_weight", -0.1),
        ("session_knn", "query_weighting", "cubic"),
    ],
)
def test_invalid_params_are_refused_naming_the_field(family, field, value):
    with pytest.raises(ValidationError) as error:
        create(family, {field: value}, 5)
    assert [e["loc"] for e in error.value.errors()] == [(field,)]
    assert field in str(error.value)


@pytest.mark.parametrize("family", [ItemKNN, SessionKNN])
@pytest.mark.parametrize(
    ("train", "reason"),
    [
        ([], "has no tracks"),
        ([[A], [B], [C, C]], "no train playlist has two different tracks"),
    ],
)
def test_a_split_without_co_occurrence_cannot_fit(family, train, reason):
    model = family(family.Params(), 4)
    with pytest.raises(CannotFit, match=f"{family.family}: .*{reason}"):
        model.fit(Sequences.from_lists(train))


def test_params_names_say_what_ranks_and_what_was_fitted():
    assert ItemKNNParams(last_n=1).name == "n200_a0.5_last1"
    assert ItemKNNParams(shrink=5, last_n=3).fit_name == "n200_a0.5_s5"
    stan = SessionKNNParams(**STAN)
    assert stan.name == "stan_k100_s1000_last50_qexp1_rec1_ipos1"
    assert stan.fit_name == SessionKNNParams().fit_name  # one fit serves every variant


@pytest.mark.parametrize(("query_rows", "density"), [(1, 0.002), (3, 0.002), (400, 0.02)])
def test_the_sparse_product_equals_scipys_for_few_and_many_query_rows(query_rows, density):
    """A few query rows take the narrow path (the rows they use hold fewer entries than there
    are columns), many take scipy's product: the entries are the same either way, an empty
    query row included."""
    rng = np.random.default_rng(query_rows)
    right = sp.random(300, 5_000, density=density, format="csr", dtype=np.float32, rng=rng)
    left = sp.random(query_rows, 300, density=0.02, format="csr", dtype=np.float32, rng=rng)
    left = sp.csr_matrix(sp.diags(np.arange(query_rows) > 0, dtype=np.float32) @ left)
    got, expected = product(left, right), sp.csr_matrix(left @ right)
    assert got.shape == expected.shape and got.nnz == expected.nnz
    np.testing.assert_allclose(got.toarray(), expected.toarray(), rtol=1e-6)
