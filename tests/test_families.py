"""The recommender interface and the families written against it, on tiny hand-made playlist
sets where the right answer is computed by hand."""

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp
from pydantic import ValidationError

from ml.artifacts import LocalArtifacts
from ml.catalogue import Catalogue
from ml.datasets.evaluation_split import EvaluationSplit
from ml.datasets.next_track import NextTrackData
from ml.evaluation.candidates import (
    CandidateResult,
    CandidateSpec,
    ScoredComponents,
    UnitData,
    results_of_the_same_fit,
    run_unit,
)
from ml.evaluation.metrics import ranking_metrics
from ml.evaluation.selection import build_hybrid, finalists, next_track_ranked
from ml.recommenders.base import CannotFit, Queries, TopK, run_concurrently
from ml.recommenders.families import create, load_recommender
from ml.recommenders.hybrid import CandidateUnion, Hybrid, merged_scores, search_weights
from ml.recommenders.popularity import Popularity
from ml.recommenders.sequential_rules import SequentialRules, SequentialRulesParams
from ml.recommenders.topk import top_k_dense, top_k_sparse
from ml.recommenders.word2vec import TUTORIAL, Word2Vec, Word2VecParams, write_corpus
from ml.sequences import UNKNOWN, Sequences

KEYS = ["a", "b", "c", "d", "e", "x", "y"]
ID = {k: i for i, k in enumerate(KEYS)}
TOY = [list("abcd"), list("abe"), list("xabc"), list("bey")]


def encode(playlists: list[list[str]]) -> Sequences:
    return Sequences.from_lists([[ID.get(t, -1) for t in p] for p in playlists])


def names(top: TopK, row: int = 0) -> list[str]:
    return [KEYS[i] for i in top.ids[row] if i >= 0]


def queries(*playlists: list[str]) -> Queries:
    return Queries(encode(list(playlists)))


def test_sequences_slices_ages_and_the_last_n():
    s = Sequences.from_lists([[1, 2, 3], [], [4, -1]])
    assert s.lengths.tolist() == [3, 0, 2]
    assert s.age_of_each_item().tolist() == [2, 1, 0, 1, 0]
    assert s.last(2).to_lists() == [[2, 3], [], [4, -1]]
    assert s.known().to_lists() == [[1, 2, 3], [], [4]]
    assert s.take(np.array([2, 0])).to_lists() == [[4, -1], [1, 2, 3]]
    assert s.slice(1, 3).to_lists() == [[], [4, -1]]
    csr = s.to_csr(5)
    assert csr.toarray()[2].tolist() == [0, 0, 0, 0, 1]
    extended = s.extend(Sequences.from_lists([[0], [2, 2]]))
    assert extended.to_lists() == [[1, 2, 3], [], [4, -1], [0], [2, 2]]


def test_the_refit_train_is_train_then_whole_validation_playlists_without_unknowns():
    train = Sequences.from_lists([[0, 1, 2], [2, 3]])
    validation = EvaluationSplit(
        "validation",
        Queries(Sequences.from_lists([[3, -1, 4], [-1]])),
        Sequences.from_lists([[1], [-1]]),
    )
    empty = EvaluationSplit("test", Queries(Sequences.empty(0)), Sequences.empty(0))
    catalogue = Catalogue(pa.table({"key": list("abcde"), "train_count": [1, 1, 2, 1, 0]}))
    data = NextTrackData(catalogue, train, validation, empty, "", pa.table({}))
    refit = data.train_and_validation()
    assert refit.sequences.to_lists() == [[0, 1, 2], [2, 3], [3, 4, 1], []]
    assert refit.dropped_plays == 3


def test_popularity_ranks_by_train_count_ties_by_id_and_skips_heard():
    model = Popularity(n_items=len(KEYS))
    model.fit(encode(TOY))
    # counts: a 3, b 4, c 2, d 1, e 2, x 1, y 1
    assert names(model.top_k(queries([]), 4)) == ["b", "a", "c", "e"]
    assert names(model.top_k(queries(["b", "c"]), 3)) == ["a", "e", "d"]


def test_popularity_fill_takes_neither_heard_nor_recommended_items():
    model = Popularity(n_items=len(KEYS))
    model.fit(encode(TOY))
    top = TopK(np.array([[ID["c"], -1, -1]], np.int32), np.array([[2.0, -np.inf, -np.inf]]))
    filled, mask = model.fill(top, queries(["b"]))
    assert names(filled) == ["c", "a", "e"]
    assert mask.tolist() == [[False, True, True]]


def test_sequential_rules_weights_by_inverse_distance_over_the_last_tracks():
    model = SequentialRules(SequentialRulesParams(max_distance=3, last_n=1), len(KEYS))
    model.fit(encode(TOY))
    # after a: b at distance 1 three times (3.0); c at 2 twice (1.0); d at 3 (1/3); e at 2 (0.5)
    top = model.top_k(queries(["a"]), 4)
    assert names(top) == ["b", "c", "e", "d"]
    assert top.scores[0].tolist() == pytest.approx([3.0, 1.0, 0.5, 1 / 3])
    # the last two tracks, the older weighted 0.5: after b: c 2.0, e 2.0, d 0.5, y 0.5;
    # after a (x0.5): b 1.5 (heard), c 0.5, e 0.25, d 1/6 -> c 2.5, e 2.25, d 2/3, y 0.5
    two = model.with_scoring(last_n=2, recency_decay=0.5)
    top = two.top_k(queries(["a", "b"]), 4)
    assert names(top) == ["c", "e", "d", "y"]
    assert top.scores[0].tolist() == pytest.approx([2.5, 2.25, 2 / 3, 0.5])


def test_the_baseline_does_not_back_off_past_an_unknown_last_track():
    model = SequentialRules.baseline(len(KEYS))
    model.fit(encode(TOY))
    assert names(model.top_k(queries(["a", "zzz"]), 3)) == []
    backs_off = model.with_scoring(skip_unknown=True)
    assert names(backs_off.top_k(queries(["a", "zzz"]), 1)) == ["b"]


def test_input_to_output_scoring_finds_what_always_follows():
    """a is always followed by b, each in otherwise random playlists: b is the first
    recommendation for [a] only when scored through the output vectors."""
    rng = np.random.default_rng(0)
    playlists = []
    for _ in range(300):
        rest = list(rng.choice(np.arange(2, 40), size=8, replace=False))
        at = int(rng.integers(0, 7))
        playlists.append([*rest[:at], 0, 1, *rest[at:]])
    train = Sequences.from_lists(playlists)
    params = Word2VecParams(
        vector_size=16, window=1, min_count=1, epochs=50, sample=0, scoring="in_out"
    )
    for sg in (0, 1):
        model = Word2Vec(Word2VecParams(**{**params.__dict__, "sg": sg}), 40)
        model.fit(train)
        top = model.top_k(Queries(Sequences.from_lists([[0]])), 3)
        assert top.ids[0, 0] == 1, (sg, top.ids[0])


def test_word2vec_is_reproducible_and_round_trips_through_its_folder(tmp_path):
    train = Sequences.from_lists([[(i * 7 + j) % 40 for j in range(12)] for i in range(200)])
    params = Word2VecParams(vector_size=8, window=3, min_count=1, epochs=3)
    first, second = Word2Vec(params, 40), Word2Vec(params, 40)
    first.fit(train)
    second.fit(train)
    assert np.array_equal(first.input_vectors, second.input_vectors)
    first.save(tmp_path / "m")
    loaded = load_recommender(tmp_path / "m")
    probe = Queries(Sequences.from_lists([[1, 2, 3], [5]]))
    assert np.array_equal(loaded.top_k(probe, 10).ids, first.top_k(probe, 10).ids)
    assert loaded.training == {} and first.training["vocabulary_size"] == 40


def test_word2vec_lists_nothing_for_a_query_it_knows_no_track_of_in_any_batch():
    """Tracks 30-39 are never played: a query of those alone gets an empty list (the
    popularity fill ranks for it), in a batch or alone; the others rank as scored alone, heard
    tracks excluded; the dense scores agree, with no score at all for the unknown query."""
    train = Sequences.from_lists([[(i * 7 + j) % 30 for j in range(12)] for i in range(200)])
    model = Word2Vec(Word2VecParams(vector_size=8, window=3, min_count=1, epochs=3), 40)
    model.fit(train)
    probe = [[1, 2, 3], [31, 35], [5], [33]]
    together = model.top_k(Queries(Sequences.from_lists(probe)), 10)
    for row, query in enumerate(probe):
        alone = model.top_k(Queries(Sequences.from_lists([query])), 10)
        assert np.array_equal(together.ids[row], alone.ids[0])
        assert np.allclose(together.scores[row], alone.scores[0], rtol=1e-5)
    assert (together.ids[[1, 3]] == UNKNOWN).all() and np.isneginf(together.scores[[1, 3]]).all()
    assert (together.ids[[0, 2]] >= 0).all() and not set(together.ids[0]) & {1, 2, 3}
    dense = model.score(Queries(Sequences.from_lists(probe)))
    assert np.isneginf(dense[[1, 3]]).all() and np.isfinite(dense[[0, 2]][:, :30]).all()
    random = model.with_scoring(unknown="random").top_k(Queries(Sequences.from_lists(probe)), 10)
    assert (random.ids[[1, 3]] >= 0).all()


def test_word2vec_on_a_share_of_the_playlists_learns_only_their_tracks():
    """Playlist i holds tracks 2i and 2i + 1: a model fitted on a seeded quarter of the 200
    playlists knows the tracks of 50 of them, the same 50 on every fit, and says so."""
    train = Sequences.from_lists([[2 * i, 2 * i + 1] * 3 for i in range(200)])
    params = Word2VecParams(vector_size=8, window=2, min_count=1, epochs=1, train_share=0.25)
    model, again = Word2Vec(params, 400), Word2Vec(params, 400)
    said = []
    model.fit(train, said.append)
    again.fit(train)
    assert len(model.item_ids) == 100 and np.array_equal(model.item_ids, again.item_ids)
    assert set(model.item_ids // 2) == set(train.sample(0.25, params.seed).items // 2)
    assert params.fit_name.endswith("_t0.25") and "a seeded 50 of 200 playlists" in said[0]


def test_long_playlists_are_cut_in_overlapping_windows_gensim_trains_whole(tmp_path):
    long = Sequences.from_lists([list(range(25_000)), [1, 2, 3]])
    cut = write_corpus(long, tmp_path / "corpus.txt", window=5)
    lines = (tmp_path / "corpus.txt").read_text().splitlines()
    assert cut == 1
    assert [len(line.split()) for line in lines] == [10_000, 10_000, 5_010, 3]
    assert lines[1].split()[0] == str(10_000 - 5)  # overlaps the previous window by 5
    assert lines[2].split()[-1] == "24999"


def test_tutorial_setup_guesses_at_random_and_keeps_heard_tracks():
    train = Sequences.from_lists([[(i * 3 + j) % 20 for j in range(6)] for i in range(100)])
    model = Word2Vec(TUTORIAL.__class__(**{**TUTORIAL.__dict__, "min_count": 1, "epochs": 2}), 25)
    model.fit(train)
    unknown_last = Queries(Sequences.from_lists([[1, 24]]))  # 24 never in train
    top = model.top_k(unknown_last, 5)
    assert (top.ids[0] >= 0).all()  # a random guess, not an empty list
    known = model.top_k(Queries(Sequences.from_lists([[1]])), 20)
    assert 1 in known.ids[0].tolist()  # heard tracks are not excluded


def test_cannot_fit_and_invalid_params_name_the_reason():
    with pytest.raises(ValidationError, match="max_distance"):
        create("sequential_rules", {"max_distance": 0}, 5)
    with pytest.raises(ValidationError, match="weights"):
        create("hybrid", {"components": ["a"], "weights": [-1.0]}, 5)
    with pytest.raises(ValueError, match="unknown recommender family 'psychic'"):
        create("psychic", {}, 5)
    with pytest.raises(ValueError, match="change what fit learns"):
        create("sequential_rules", {}, 5).with_scoring(max_distance=3)
    with pytest.raises(CannotFit, match="min_count=50"):
        Word2Vec(Word2VecParams(min_count=50), 5).fit(Sequences.from_lists([[0, 1, 2]]))
    with pytest.raises(ValueError, match="variants may only set"):
        CandidateSpec("sequential_rules", {}, [{"max_distance": 3}]).validate()


def test_hybrid_sums_per_query_normalised_scores_and_round_trips(tmp_path):
    train = encode(TOY)
    rules = SequentialRules(SequentialRulesParams(max_distance=3), len(KEYS))
    rules.fit(train)
    popular = Popularity(n_items=len(KEYS))
    popular.fit(train)
    hybrid = Hybrid.of([rules, popular], [1.0, 1.0], depth=5)
    # for [a]: rules b 3, c 1, e .5, d 1/3 -> b 1, c .27, e .06, d 0 (min-max);
    # popularity b 4, c 2, e 2, d 1, x 1, y 1 -> b 1, c 1/3, e 1/3, d 0, x 0
    top = hybrid.top_k(queries(["a"]), 3)
    assert names(top) == ["b", "c", "e"]
    hybrid.save(tmp_path / "h")
    loaded = load_recommender(tmp_path / "h")
    assert np.array_equal(loaded.top_k(queries(["a"], ["x", "b"]), 4).ids,
                          hybrid.top_k(queries(["a"], ["x", "b"]), 4).ids)  # fmt: skip
    # ranked from its components' lists (as selection does with the weight search's): the same
    probe = queries(["a"], ["x", "b"], ["c", "a"], ["y"])
    lists = [part.top_k(probe, 5) for part in hybrid.parts]
    assert np.array_equal(hybrid.top_k_of(lists, probe, 4).ids, hybrid.top_k(probe, 4).ids)
    assert np.array_equal(hybrid.top_k_of(lists, probe, 4).scores, hybrid.top_k(probe, 4).scores)


def test_a_second_stage_fits_its_components_at_once_as_one_by_one():
    """A hybrid (and a reranker) fit their components on threads at once: each learns what it
    learns alone, and a component's error reaches the caller."""
    train, probe = encode(TOY), queries(["a"], ["x", "b"], ["c", "a"], ["y"])
    rules = SequentialRules(SequentialRulesParams(max_distance=3), len(KEYS))
    popular = Popularity(n_items=len(KEYS))
    hybrid = Hybrid.of([rules, popular], [1.0, 0.5], depth=5)
    hybrid.fit(train)
    alone = [SequentialRules(SequentialRulesParams(max_distance=3), len(KEYS)),
             Popularity(n_items=len(KEYS))]  # fmt: skip
    for model in alone:
        model.fit(train)
    expected = Hybrid.of(alone, [1.0, 0.5], depth=5).top_k(probe, 4)
    assert np.array_equal(hybrid.top_k(probe, 4).ids, expected.ids)
    assert np.array_equal(hybrid.top_k(probe, 4).scores, expected.scores)

    def cannot() -> None:
        raise CannotFit("no playlists")

    with pytest.raises(CannotFit, match="no playlists"):
        run_concurrently([lambda: None, cannot])


def test_weight_search_prefers_the_component_that_finds_the_labels():
    train = encode(TOY)
    rules = SequentialRules(SequentialRulesParams(max_distance=3), len(KEYS))
    rules.fit(train)
    popular = Popularity(n_items=len(KEYS))
    popular.fit(train)
    probe = queries(["x"], ["b"])
    # the rules' first picks (after x: a; after b: c, tied with e, lower id first); popularity
    # would say b and a
    labels = Sequences.from_lists([[ID["a"]], [ID["c"]]])
    lists = [rules.top_k(probe, 5), popular.top_k(probe, 5)]
    weights, metrics = search_weights(lists, labels, len(KEYS), 1)
    assert metrics["hit_rate_at_1"] == 1.0
    assert weights[0] > weights[1]


def test_weight_search_ranks_as_the_merged_hybrid_does():
    """Each weighting's hit rate and MRR, computed from the labels' ranks alone, equal those of
    the merged lists (ties on equal sums, lists of uneven length, zero weights leaving a list's
    items out)."""
    rng = np.random.default_rng(7)
    n, n_items, depth, k = 200, 120, 30, 10
    lists = []
    for rounding in (None, 1, 2):
        ids = np.stack([rng.choice(n_items, depth, replace=False) for _ in range(n)])
        scores = -np.sort(-rng.random((n, depth)), axis=1)
        if rounding is not None:
            scores = np.round(scores, rounding)  # many equal scores
        short = np.arange(depth)[None, :] >= rng.integers(5, depth + 1, n)[:, None]
        ids[short], scores[short] = -1, -np.inf
        lists.append(TopK(ids.astype(np.int32), scores.astype(np.float32)))
    labels = Sequences.from_lists([[int(x)] for x in rng.integers(0, n_items, n)])
    union = CandidateUnion.of(lists, labels, n_items)
    assert len(np.unique(union.rows)) < n  # queries with no relevant candidate are left out
    for weights in ([1.0, 0.0, 0.0], [0.5, 1.0, 0.25], [0.0, 1.0, 1.0], [1.0, 1.0, 1.0]):
        merged = top_k_sparse(merged_scores(lists, weights, n_items), k, Sequences.empty(n))[0]
        expected = ranking_metrics(merged, labels, n_items, (k,))
        hit_rate, mrr = union.hit_rate_and_mrr(weights, k)
        assert hit_rate == pytest.approx(expected[f"hit_rate_at_{k}"]) and hit_rate > 0
        assert mrr == pytest.approx(expected[f"mrr_at_{k}"])


def test_sparse_top_k_is_the_best_k_of_each_row_ties_to_the_lower_id():
    """Against the definition, row by row: stored non-zero entries not heard, sorted by score
    then item id; rows with many ties, fewer than k entries, none at all, duplicate entries."""
    rng = np.random.default_rng(3)
    n, n_items, k = 300, 500, 20
    counts = rng.integers(0, 80, n)
    counts[::7] = 0
    rows = np.repeat(np.arange(n), counts)
    cols = rng.integers(0, n_items, len(rows))
    values = np.round(rng.random(len(rows)), 1).astype(np.float32)  # many equal scores
    scores = sp.csr_matrix((values, (rows, cols)), shape=(n, n_items))  # duplicates summed
    heard = Sequences.from_lists([list(rng.choice(n_items, 30, replace=False)) for _ in range(n)])
    ids, top_scores = top_k_sparse(scores, k, heard)
    dense = scores.toarray()
    for r in range(n):
        heard_here = set(heard[r].tolist())
        eligible = [c for c in np.flatnonzero(dense[r]) if c not in heard_here]
        expected = sorted(eligible, key=lambda c: (-dense[r, c], c))[:k]
        assert ids[r, : len(expected)].tolist() == expected
        assert np.all(ids[r, len(expected) :] == -1)
        assert np.allclose(top_scores[r, : len(expected)], dense[r, expected])


def test_a_hybrid_that_only_ties_a_single_model_ranks_after_it():
    """The 10% Kaggle-shaped run's hybrid weighed every component but sequential rules zero and
    won the tie by its name; the single model is as good and cheaper to serve."""

    def result(name: str, family: str, hit_rate: float) -> CandidateResult:
        metrics = {"hit_rate_at_100": hit_rate, "mrr_at_100": 0.1}
        return CandidateResult(name, family, family, {}, {}, "", metrics, 0.0, 0.0)

    rules = result("sequential_rules:w10", "sequential_rules", 0.44)
    hybrid = result("hybrid:1*sequential_rules+0*word2vec", "hybrid", 0.44)
    assert next_track_ranked([hybrid, rules], "hit_rate_at_100") == [rules, hybrid]
    better = result("hybrid:1*sequential_rules+1*word2vec", "hybrid", 0.45)
    assert next_track_ranked([rules, better], "hit_rate_at_100")[0] is better


def test_the_hybrid_leaves_out_what_its_weight_search_weighs_zero(tmp_path):
    """A component weighed zero never changes the ranking; the hybrid drops it (else it is
    scored at every query and shipped in the bundle), and a search that keeps one model alone
    makes no hybrid: that model ranks the same."""
    train = encode(TOY)
    rules = SequentialRules(SequentialRulesParams(max_distance=3), len(KEYS))
    popular = Popularity(n_items=len(KEYS))
    only_y = Popularity(n_items=len(KEYS))  # proposes y first whatever was heard
    for model, data in ((rules, train), (popular, train), (only_y, encode([list("yyyd")]))):
        model.fit(data)
    store = LocalArtifacts(tmp_path)
    components = []
    for i, model in enumerate((rules, popular, only_y)):
        model.save(store.writable(f"c{i}"))
        name = f"{model.name}#{i}"
        components.append(CandidateResult(name, f"f{i}", "u", {}, {}, f"c{i}", {}, 0.0, 0.0))
    # after x the rules say a (popularity: b); with nothing heard only popularity says b
    both = EvaluationSplit("validation", queries(["x"], []), encode([["a"], ["b"]]))
    said = []
    scored = ScoredComponents.of(components, store, both, 5)
    built = build_hybrid(scored, both, popular, store, "h", 1, 5, (1,), said.append)
    assert built is not None
    hybrid, lists = built
    assert hybrid.metrics["hit_rate_at_1"] == 1.0 and lists.ids[:, 0].tolist() == [0, 1]
    assert hybrid.params["components"] == [rules.name, popular.name]
    assert all(w > 0 for w in hybrid.params["weights"])
    assert sorted(p.name for p in (tmp_path / "h").iterdir() if p.is_dir()) == [
        "component_0",
        "component_1",
    ]
    assert "0*" in said[0] and said[0].endswith("#2")
    rules_alone = EvaluationSplit("validation", queries(["x"], ["b"]), encode([["a"], ["c"]]))
    said.clear()
    scored = ScoredComponents.of(components, store, rules_alone, 5)
    assert build_hybrid(scored, rules_alone, popular, store, "h2", 1, 5, (1,), said.append) is None
    assert "keeps one model alone" in said[0]


def test_a_unit_runs_only_on_train_splits_within_its_row_range(tmp_path):
    """The grid's guards: a unit whose cost outgrows the data (max_train_rows) and one meant for
    large data only (min_train_rows) are skipped with the reason, not run."""
    train = encode(TOY)  # 14 rows
    validation = EvaluationSplit("validation", queries(["a"]), encode([["b"]]))
    popular = Popularity(n_items=len(KEYS))
    popular.fit(train)
    guards = [
        ({"max_train_rows": 13}, "14 train rows > max_train_rows 13"),
        ({"min_train_rows": 15}, "14 train rows < min_train_rows 15"),
    ]
    for bounds, said in guards:
        spec = CandidateSpec("sequential_rules", {}, **bounds)
        with pytest.raises(CannotFit, match=said):
            run_unit(
                spec, UnitData.next_track(train, validation, popular), LocalArtifacts(tmp_path), "c"
            )
    within = CandidateSpec("sequential_rules", {}, min_train_rows=14, max_train_rows=14)
    data = UnitData.next_track(train, validation, popular)
    results = run_unit(within, data, LocalArtifacts(tmp_path), "c")
    assert results[0].metrics["hit_rate_at_10"] == 1.0


def test_the_second_stage_builds_on_the_lists_each_unit_was_scored_with(tmp_path, monkeypatch):
    """A grid unit keeps each variant's unfilled lists for the validation queries it was scored
    on; the second stage loads them instead of scoring the same queries again, and scores when
    its queries are not those (another count) or it needs deeper lists."""
    train = encode(TOY)
    validation = EvaluationSplit("validation", queries(["x"], ["a"]), encode([["a"], ["b"]]))
    popular = Popularity(n_items=len(KEYS))
    popular.fit(train)
    store = LocalArtifacts(tmp_path)
    spec = CandidateSpec("sequential_rules", {"max_distance": 3}, [{"last_n": 1}, {"last_n": 2}])
    results = run_unit(spec, UnitData.next_track(train, validation, popular, (1, 5)), store, "grid")
    expected = [r.load(store).top_k(validation.queries, 5) for r in results]
    scoring = []
    real_top_k = SequentialRules.top_k
    monkeypatch.setattr(
        SequentialRules, "top_k", lambda self, q, k: scoring.append(k) or real_top_k(self, q, k)
    )
    scored = ScoredComponents.of(results, store, validation, 5)
    assert scoring == []  # loaded, not scored
    for mine, theirs in zip(scored.lists, expected, strict=True):
        assert np.array_equal(mine.ids, theirs.ids) and np.array_equal(mine.scores, theirs.scores)
    assert ScoredComponents.of(results, store, validation, 3).lists[1].ids.shape == (2, 3)
    assert scoring == []
    ScoredComponents.of(results, store, validation, 6)  # deeper than kept
    one_query = EvaluationSplit("validation", queries(["x"]), encode([["a"]]))
    ScoredComponents.of(results, store, one_query, 5)
    assert scoring == [6, 6, 5, 5]


def test_a_baseline_takes_a_grid_units_results_only_when_they_are_its_own(tmp_path):
    """The last-track baseline is one variant of a rules grid unit with the same fit: it takes
    that unit's results (the same model and figures, marked as a baseline) instead of fitting
    again, and fits itself when no unit scored its variant with every param equal."""
    train = encode(TOY)
    validation = EvaluationSplit("validation", queries(["x"], ["a"]), encode([["a"], ["b"]]))
    popular = Popularity(n_items=len(KEYS))
    popular.fit(train)
    data, store = UnitData.next_track(train, validation, popular), LocalArtifacts(tmp_path)
    rule = {"last_n": 1, "skip_unknown": False}
    baseline = CandidateSpec("sequential_rules", {"max_distance": 3}, [rule], baseline=True)
    grid = run_unit(
        CandidateSpec("sequential_rules", {"max_distance": 3}, [{"last_n": 2}, rule]),
        data,
        store,
        "grid",
    )
    (taken,) = results_of_the_same_fit(baseline, grid)
    (own,) = run_unit(baseline, data, store, "baselines")
    assert taken.baseline and not grid[1].baseline
    assert taken.model_key == grid[1].model_key != own.model_key
    assert (taken.name, taken.params, taken.metrics) == (own.name, own.params, own.metrics)
    other_fit = run_unit(
        CandidateSpec("sequential_rules", {"max_distance": 2}, [rule]), data, store, "g2"
    )
    assert results_of_the_same_fit(baseline, other_fit) is None
    assert results_of_the_same_fit(baseline, grid[:1]) is None  # its variant not scored
    popularity = CandidateSpec("popularity", baseline=True)
    assert results_of_the_same_fit(popularity, grid) is None


def test_finalists_are_the_best_few_within_two_standard_errors_of_the_best():
    def result(name: str, hit_rate: float, stderr: float) -> CandidateResult:
        metrics = {"hit_rate_at_100": hit_rate, "hit_rate_at_100_stderr": stderr, "mrr_at_100": 0}
        return CandidateResult(name, "f", "u", {}, {}, "", metrics, 0.0, 0.0)

    # 10,000 sampled queries near 0.45: standard errors ~0.005, a difference's ~0.007
    close = [result(f"c{i}", 0.450 - 0.004 * i, 0.005) for i in range(4)]
    far = result("far", 0.43, 0.005)
    chosen = finalists([far, *close], "hit_rate_at_100", 5)
    assert [r.name for r in chosen] == ["c0", "c1", "c2", "c3"]
    assert [r.name for r in finalists([far, *close], "hit_rate_at_100", 2)] == ["c0", "c1"]


def test_selecting_on_ndcg_at_10_prefers_the_better_top_ten_and_breaks_ties_by_hit_rate_at_100():
    """The issue's yes_small case: session-kNN serves a better top 10, the hybrid a longer list;
    on NDCG@10 the better top 10 wins, on hit rate@100 (the former rule) the longer list."""

    def result(name: str, ndcg: float, hit_rate: float) -> CandidateResult:
        metrics = {"ndcg_at_10": ndcg, "hit_rate_at_100": hit_rate, "mrr_at_100": 0.0}
        metrics |= {"ndcg_at_10_stderr": 0.004, "hit_rate_at_100_stderr": 0.008}
        return CandidateResult(name, name.split(":")[0], "u", {}, {}, "", metrics, 0.0, 0.0)

    knn = result("session_knn:k100", 0.118, 0.570)
    hybrid = result("hybrid:1*a+1*b", 0.110, 0.600)
    assert next_track_ranked([hybrid, knn], "ndcg_at_10") == [knn, hybrid]
    assert next_track_ranked([knn, hybrid], "hit_rate_at_100") == [hybrid, knn]
    longer = result("item_knn:n200", 0.118, 0.580)  # the same NDCG@10, a longer list
    assert next_track_ranked([knn, longer], "ndcg_at_10") == [longer, knn]
    # finalists: the margin is two standard errors of the NDCG@10 difference (~0.0113)
    far = result("far:x", 0.105, 0.650)
    assert [r.name for r in finalists([far, hybrid, knn], "ndcg_at_10", 5)] == [
        "session_knn:k100",
        "hybrid:1*a+1*b",
    ]


def test_dense_top_k_equals_a_full_sort_also_for_rows_the_model_cannot_score():
    """Wide blocks take the bound shortcut; rows that are -inf throughout, or finite in fewer
    than k columns, or only past the sampled columns (with ties at the k-th value), list what a
    full sort lists."""
    rng = np.random.default_rng(3)
    n_items, k = 4_000, 20
    block = rng.random((6, n_items), dtype=np.float32)
    block[1] = -np.inf  # a query the model does not know
    block[2, 7:] = -np.inf  # finite in fewer than k columns
    block[3, :] = -np.inf
    block[3, -30:] = rng.random(30, dtype=np.float32)  # finite only past the sampled columns
    block[3, -30:-10] = 0.25  # and tied at the k-th value: the lower ids first
    block[3, -10:] += 1.0
    block[4, ::2] = 0.5  # ties, broken by the lower id
    history = Sequences.from_lists([[5], [], [0, 3], [], [], [n_items - 1]])
    ids, scores = top_k_dense(block.copy(), k, history)
    heard = block.copy()
    for row, items in enumerate(history.to_lists()):
        heard[row, items] = -np.inf
    order = np.lexsort((np.tile(np.arange(n_items), (6, 1)), -heard), axis=1)[:, :k]
    want_scores = np.take_along_axis(heard, order, axis=1)
    want_ids = np.where(np.isfinite(want_scores), order, UNKNOWN)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(scores, want_scores)
    assert (ids[1] == UNKNOWN).all() and (ids[2] >= 0).sum() == 5 and (ids[3] >= 0).sum() == 20
