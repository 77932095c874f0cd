"""The predictor on a tiny known embedding, and the baselines on a toy sequence set."""

import numpy as np
import pytest

from ml.baselines import MostPopular, SequentialRules
from ml.recommender import TUTORIAL_STRATEGY, EmbeddingRecommender, QueryStrategy
from ml.retrieval import VectorIndex

# Four tracks on the unit circle: a=0°, b=30°, c=90°, d=180°.
ANGLES = {"a": 0, "b": 30, "c": 90, "d": 180}
KEYS = list(ANGLES)
VECTORS = np.array(
    [[np.cos(np.radians(x)), np.sin(np.radians(x))] for x in ANGLES.values()], dtype=np.float32
)
POPULAR = MostPopular({"d": 10, "c": 5, "b": 3, "a": 1})


def recommender(**strategy) -> EmbeddingRecommender:
    return EmbeddingRecommender(VectorIndex(KEYS, VECTORS), POPULAR, QueryStrategy(**strategy))


def test_top_k_is_exact_cosine_order_with_exclusions_and_any_batch_size():
    index = VectorIndex(KEYS, VECTORS * np.array([[3.0], [1.0], [0.5], [2.0]], dtype=np.float32))
    toward_80 = [2 * np.cos(np.radians(80)), 2 * np.sin(np.radians(80))]
    queries = np.array([[1.0, 0.0], toward_80], dtype=np.float32)
    for batch_size in (1, 2, 64):
        ids, scores = index.top_k(queries, 3, exclude=[[0], []], batch_size=batch_size)
        assert [[KEYS[i] for i in row] for row in ids] == [["b", "c", "d"], ["c", "b", "a"]]
        assert scores[0, 0] == pytest.approx(np.cos(np.radians(30)))
        assert scores[1, 2] == pytest.approx(np.cos(np.radians(80)), abs=1e-6)


def test_top_k_matches_brute_force_on_random_vectors():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(500, 16)).astype(np.float32)
    index = VectorIndex([str(i) for i in range(500)], vectors)
    queries = rng.normal(size=(37, 16)).astype(np.float32)
    ids, _ = index.top_k(queries, 10, batch_size=8)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    brute = np.argsort(-(queries @ unit.T), axis=1)[:, :10]
    assert (ids == brute).all()


def test_last_track_query_excludes_what_was_heard():
    assert recommender(kind="last").recommend([["c", "a"]], 2) == [["b", "d"]]
    keep_seen = recommender(kind="last", exclude_seen=False)
    assert keep_seen.recommend([["c", "a"]], 2) == [["a", "b"]]


def test_last_known_backs_off_past_unknown_tracks_and_last_does_not():
    assert recommender(kind="last_known").recommend([["a", "zzz"]], 1) == [["b"]]
    # "last" with popularity for an unknown last track: most popular not yet heard
    assert recommender(kind="last").recommend([["d", "zzz"]], 2) == [["c", "b"]]


def test_recency_mean_weights_recent_tracks_more():
    # a then c: mean direction with decay 0.5 leans to c (90°), nearest unheard is b (30°) vs d
    rec = recommender(kind="recency_mean", n_last=2, decay=0.5)
    assert rec.recommend([["a", "c"]], 1) == [["b"]]
    # c (old) then d (recent): leans to d's side, so after excluding both, a/b are far; b closer
    rec = recommender(kind="recency_mean", n_last=2, decay=0.1)
    assert rec.recommend([["b", "d"]], 1) == [["c"]]


def test_unknown_playlist_gets_popular_or_seeded_random():
    assert recommender().recommend([["x", "y"]], 3) == [["d", "c", "b"]]
    tutorial = EmbeddingRecommender(VectorIndex(KEYS, VECTORS), POPULAR, TUTORIAL_STRATEGY, seed=1)
    first = tutorial.recommend([["x"]], 4)
    assert sorted(first[0]) == sorted(KEYS)
    assert tutorial.recommend([["x"]], 4) == first


TOY = [["a", "b", "c", "d"], ["a", "b", "e"], ["b", "c"], ["e", "a", "b"]]


def test_most_popular_ranks_by_count_then_key_and_skips_heard():
    popular = MostPopular.from_sequences(TOY)
    assert popular.ranking == ["b", "a", "c", "e", "d"]
    assert popular.recommend([["b", "c"]], 3) == [["a", "e", "d"]]


def test_sequential_rules_weight_by_inverse_distance():
    rules = SequentialRules(TOY, max_distance=10)
    # after a: b at distance 1 three times (3.0); c at 2 (0.5), e at 2 (0.5), d at 3 (1/3)
    assert [rules.keys[i] for i in rules.rules[rules.ids["a"]]] == ["b", "c", "e", "d"]
    assert rules.recommend([["x", "a"]], 3) == [["b", "c", "e"]]
    # after b: c (2.0), e (1.0), d (0.5); heard c excluded, then popularity fill (a)
    assert rules.recommend([["c", "b"]], 3) == [["e", "d", "a"]]
    # no rule follows d: popularity, heard tracks excluded
    assert rules.recommend([["b", "d"]], 3) == [["a", "c", "e"]]
    # unknown last track: popularity only
    assert rules.recommend([["zzz"]], 2) == [["b", "a"]]


def test_sequential_rules_respect_max_distance():
    rules = SequentialRules(TOY, max_distance=1)
    assert [rules.keys[i] for i in rules.rules[rules.ids["a"]]] == ["b"]


def test_top_k_is_exact_on_a_wide_catalog_with_exclusions():
    """Wide enough for the bounded selection path; ties are impossible with random vectors."""
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(20_000, 8)).astype(np.float32)
    index = VectorIndex([str(i) for i in range(20_000)], vectors)
    queries = rng.normal(size=(50, 8)).astype(np.float32)
    exclude = [list(rng.integers(0, 20_000, size=5)) for _ in range(50)]
    ids, _ = index.top_k(queries, 100, exclude=exclude, batch_size=16)
    unit_queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    brute = unit_queries @ index.unit.T
    for row, excluded in enumerate(exclude):
        brute[row, excluded] = -np.inf
    assert (ids == np.argsort(-brute, axis=1)[:, :100]).all()
    assert not any(set(row) & set(ex) for row, ex in zip(ids.tolist(), exclude, strict=True))
