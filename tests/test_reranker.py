"""The LambdaRank reranker: it learns the feature that decides the label, its out-of-fold lists
never depend on the labels of the queries they rank, its features on a hand-made pool, and its
save/load round trip."""

import dataclasses
import itertools
from functools import partial

import numpy as np
import pytest
import scipy.sparse as sp

import ml.recommenders.reranker as reranker_module
from ml.artifacts import LocalArtifacts
from ml.datasets.evaluation_split import EvaluationSplit
from ml.evaluation.candidates import CandidateResult, ScoredComponents, evaluate_lists
from ml.evaluation.next_track_selection import refit_model
from ml.evaluation.reranking import build_reranker, on_validation
from ml.recommenders import base
from ml.recommenders.base import ItemVectors, Queries, TopK
from ml.recommenders.families import create, load_recommender
from ml.recommenders.popularity import Popularity
from ml.recommenders.reranker import Reranker, folds_of, prefix_queries
from ml.recommenders.reranker_features import TrainStatistics, feature_names, pool_features
from ml.sequences import Sequences

N_ITEMS = 60


def successor_walks(rng: np.random.Generator, n: int, follow: float) -> list[list[int]]:
    """Playlists where each track is followed by its successor (3 i + 1 mod N) with probability
    ``follow``, else by a random track."""
    playlists = []
    for _ in range(n):
        track = int(rng.integers(N_ITEMS))
        playlist = [track]
        for _ in range(int(rng.integers(3, 8))):
            follows = rng.random() < follow
            track = (3 * track + 1) % N_ITEMS if follows else int(rng.integers(N_ITEMS))
            playlist.append(track)
        playlists.append(playlist)
    return playlists


def split_of(playlists: list[list[int]]) -> EvaluationSplit:
    """Queries (all but the last track) labelled with the successor of their last track."""
    histories = [p[:-1] for p in playlists]
    labels = [[(3 * h[-1] + 1) % N_ITEMS] for h in histories]
    return EvaluationSplit(
        "validation", Queries(Sequences.from_lists(histories)), Sequences.from_lists(labels)
    )


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    train = Sequences.from_lists(successor_walks(rng, 400, follow=0.7))
    # The only component ranks by popularity, which says nothing of what comes next: what
    # decides the label is a feature (the transition count from the last track).
    popularity = create("popularity", {}, N_ITEMS)
    popularity.fit(train)
    validation = split_of(successor_walks(rng, 300, follow=0.7))
    reranker = Reranker.of(
        [popularity], np.full(N_ITEMS, -1, np.int32), depth=N_ITEMS, prefixes=2, folds=3
    )
    reranker.fit_statistics(train)
    learned = reranker.learn(reranker.component_lists(validation.queries), validation)
    return train, validation, reranker, learned


def test_the_reranker_learns_to_rank_by_the_feature_that_decides(fitted):
    train, validation, reranker, learned = fitted
    counts = Popularity.from_counts(np.bincount(train.items, minlength=N_ITEMS))
    out_of_fold, _ = evaluate_lists(learned, validation, counts, (1, 10))
    by_popularity, _ = evaluate_lists(
        reranker.parts[0].top_k(validation.queries, 10), validation, counts, (1, 10)
    )
    assert by_popularity["hit_rate_at_1"] < 0.1
    assert out_of_fold["hit_rate_at_1"] > 0.95 * findable(validation)
    gains = reranker.importances()
    assert max(gains, key=gains.get) in {"transitions_last_1", "cooccurrence_last_1"}


def test_out_of_fold_lists_never_depend_on_the_labels_they_are_scored_on(fitted):
    """Relabel every query of one fold at random: the other folds' rankers and the served one
    learn differently, but that fold's lists come from a ranker that never read its labels."""
    train, validation, reranker, learned = fitted
    fold = folds_of(len(validation), reranker.params.folds, reranker.params.seed) == 0
    labels = validation.labels.items.copy()
    labels[fold] = np.random.default_rng(1).integers(N_ITEMS, size=int(fold.sum()))
    relabelled = EvaluationSplit(
        "validation", validation.queries, Sequences(labels, validation.labels.offsets)
    )
    again = Reranker.of(reranker.parts, reranker.artists, **_params(reranker))
    again.fit_statistics(train)
    relearned = again.learn(again.component_lists(validation.queries), relabelled)
    assert np.array_equal(relearned.ids[fold], learned.ids[fold])
    assert not np.array_equal(relearned.ids[~fold], learned.ids[~fold])


def test_the_train_counts_log_how_many_pairs_they_hold(fitted):
    train, _, reranker, _ = fitted
    again, messages = Reranker.of(reranker.parts, reranker.artists, **_params(reranker)), []
    again.fit_statistics(train, messages.append)
    pairs = again.statistics.transitions.nnz + again.statistics.cooccurrence.nnz
    assert pairs > 0
    window = again.params.window
    assert any(f"{pairs:,} pairs (next track, within {window} positions)" in m for m in messages)


def test_what_the_ranker_learns_is_the_same_on_one_thread_and_several(fitted, monkeypatch):
    """The cut queries are pooled several batches at a time on threads; the sample drawn from
    them, and so the ranker, must not depend on how many."""
    train, validation, reranker, _ = fitted
    monkeypatch.setattr(reranker_module, "CUT_BATCH", 50)  # 300 queries x 2 cuts: 12 batches
    learned = {}
    for threads in (1, 4):
        monkeypatch.setattr(base, "SCORING_THREADS", threads)
        monkeypatch.setattr(reranker_module, "SCORING_THREADS", threads)
        again = Reranker.of(reranker.parts, reranker.artists, **_params(reranker))
        again.fit_statistics(train)
        learned[threads] = again.learn(again.component_lists(validation.queries), validation)
        assert again.training["ranker_training_queries"] > 300
    np.testing.assert_array_equal(learned[4].ids, learned[1].ids)
    np.testing.assert_array_equal(learned[4].scores, learned[1].scores)


def _params(reranker: Reranker) -> dict:
    fields = ("depth", "prefixes", "folds", "seed")
    return {name: getattr(reranker.params, name) for name in fields}


def test_features_of_a_hand_made_pool():
    train = Sequences.from_lists([[0, 1, 2], [0, 1], [2, 3], [1, 3]])
    artists = np.array([0, 0, 1, -1, 1], dtype=np.int32)
    statistics = TrainStatistics.of(train, 5, artists, window=2, keep_per_row=10)
    queries = Queries(Sequences.from_lists([[2, 0]]))
    proposals = TopK(np.array([[1, 3, 2]], np.int32), np.array([[3.0, 2.0, 1.0]], np.float32))
    unit = np.array([[1, 0], [0, 1], [0, 1], [0.6, 0.8], [0, 1]], dtype=np.float32)
    vectors = ItemVectors(np.array([0, 1, 2, 3, -1]), unit[:4])
    pool, features = pool_features([proposals], queries, statistics, vectors)
    names = feature_names(["rules"], with_vectors=True)
    row = {item: dict(zip(names, features[i], strict=True)) for i, item in enumerate(pool.items)}
    assert sorted(row) == [1, 3]  # the heard track 2 is not a candidate
    assert row[1]["rules_rank"] == 1 and row[3]["rules_rank"] == 2
    assert row[1]["rules_normalised"] == 1.0 and row[3]["rules_normalised"] == pytest.approx(0.5)
    assert row[1]["transitions_last_1"] == 2  # 0 -> 1 twice in train
    assert row[3]["transitions_last_1"] == 0
    assert row[3]["transitions_last_3"] == 1  # 2 -> 3 once
    assert row[1]["cooccurrence_last_3"] == 3  # 0~1 twice, 2~1 once (distance 1) in train
    assert row[1]["same_artist_tracks"] == 1 and row[1]["same_artist_as_last"] == 1
    assert row[3]["same_artist_tracks"] == 0  # no artist
    assert row[1]["log_popularity"] == pytest.approx(np.log1p(3))
    assert row[1]["query_length"] == 2
    # the last track (0) points along x; the query's mean, of (0, 1) and (1, 0), diagonally
    assert row[3]["word2vec_cosine_last"] == pytest.approx(0.6)
    assert row[3]["word2vec_cosine_mean"] == pytest.approx(1.4 / np.sqrt(2))
    assert row[1]["word2vec_cosine_last"] == pytest.approx(0.0)


def test_cut_queries_are_the_last_prefixes_of_each_history():
    split = EvaluationSplit(
        "validation",
        Queries(Sequences.from_lists([[5, 6, 7, 8], [9], [1, -1, 2]])),
        Sequences.from_lists([[0], [0], [0]]),
    )
    cut, row = prefix_queries(split, 2)
    assert cut.queries.history.to_lists() == [[5, 6], [5, 6, 7], [1, -1]]
    assert cut.labels.to_lists() == [[7], [8], [2]]  # 1 -> -1 is unknown: not a query
    assert row.tolist() == [0, 0, 2]


def test_the_reranker_round_trips_and_is_measured_out_of_sample(fitted, tmp_path):
    train, validation, reranker, _ = fitted
    store = LocalArtifacts(tmp_path)
    reranker.parts[0].save(store.writable("popularity"))
    component = CandidateResult("popularity:", "popularity", "u", {}, {}, "popularity", {}, 0, 0)
    sample_rows = np.arange(0, len(validation), 2)
    counts = Popularity.from_counts(np.bincount(train.items, minlength=N_ITEMS))
    scored = ScoredComponents.of([component], store, validation.take(sample_rows), N_ITEMS)
    built = build_reranker(
        scored, train=train, catalogue=_catalogue(), sample=validation.take(sample_rows),
        popularity=counts, store=store, key="reranker", ks=(1, 10), depth=N_ITEMS,
    )  # fmt: skip
    assert built.result.metrics["queries"] == len(sample_rows)  # the sample, out of fold
    metrics, top = on_validation(built, validation, sample_rows, counts, (1, 10))
    assert metrics["queries"] == len(validation)
    assert np.array_equal(top.ids[sample_rows], built.top.ids)
    rest = np.setdiff1d(np.arange(len(validation)), sample_rows)
    # Queries outside the sample: the served ranker, which is what a reload serves.
    reloaded = load_recommender(store.stage("reranker"))
    served = reloaded.top_k(validation.take(rest).queries, 10)
    assert np.array_equal(top.ids[rest], served.ids)
    assert metrics["hit_rate_at_1"] > 0.95 * findable(validation)


def findable(split: EvaluationSplit) -> float:
    """The share of queries whose label was not heard already (heard tracks are never
    recommended): the best hit rate any model can reach."""
    pairs = zip(split.queries.history.to_lists(), split.labels.to_lists(), strict=True)
    return float(np.mean([label[0] not in history for history, label in pairs]))


def _catalogue():
    import pyarrow as pa

    from ml.catalogue import Catalogue

    keys = [f"t{i}" for i in range(N_ITEMS)]
    return Catalogue(pa.table({"key": keys, "train_count": np.zeros(N_ITEMS, np.int64)}))


def test_a_refit_keeps_the_ranker_and_relearns_components_and_counts(fitted, tmp_path):
    """What the test split and the bundle get: fit again on more playlists, a reranker keeps
    the ranker validation taught it and relearns its components and train counts."""
    train, validation, reranker, _ = fitted
    reranker.save(tmp_path / "reranker")
    refit = load_recommender(tmp_path / "reranker")
    more = train.extend(validation.queries.history.append(validation.labels).known())
    refit.fit(more)
    plays = np.bincount(more.items, minlength=N_ITEMS)
    assert refit.booster.model_to_string() == reranker.booster.model_to_string()
    assert refit.statistics.counts.tolist() == plays.tolist()
    assert refit.parts[0].counts.tolist() == plays.tolist()  # the popularity component
    assert refit.statistics.transitions.sum() > reranker.statistics.transitions.sum()


@pytest.mark.parametrize("share", [1.0, 0.5])
def test_a_refit_keeps_a_component_fitted_on_a_share_of_the_playlists(fitted, share):
    """Word2Vec fitted on a seeded share of the playlists keeps that fit when its second stage
    refits, and says so; on every playlist it is fitted again, as the popularity beside it."""
    train, validation, _, _ = fitted
    word2vec = create(
        "word2vec",
        {"vector_size": 8, "window": 2, "min_count": 1, "epochs": 1, "train_share": share},
        N_ITEMS,
    )
    word2vec.fit(train)
    before = word2vec.input_vectors.copy()
    popularity = create("popularity", {}, N_ITEMS)
    popularity.fit(train)
    reranker = Reranker.of([popularity, word2vec], np.full(N_ITEMS, -1, np.int32), depth=10)
    more = train.extend(validation.queries.history.append(validation.labels).known())
    said = []
    reranker.fit(more, said.append)
    assert (
        reranker.statistics.counts.tolist() == np.bincount(more.items, minlength=N_ITEMS).tolist()
    )
    assert popularity.counts.tolist() == reranker.statistics.counts.tolist()
    kept = [line for line in said if "keeps its fit" in line]
    if share < 1:
        assert np.array_equal(word2vec.input_vectors, before) and len(kept) == 1
    else:
        assert not np.array_equal(word2vec.input_vectors, before) and not kept


def test_a_baseline_with_the_fit_of_a_refit_component_shares_that_refit(fitted, tmp_path):
    """The popularity baseline has the fit of the reranker's popularity component: the refit
    reuses it, and it ranks as its own refit would."""
    train, validation, reranker, _ = fitted
    reranker.save(tmp_path / "reranker")
    more = train.extend(validation.queries.history.append(validation.labels).known())
    selected = refit_model(load_recommender(tmp_path / "reranker"), more, [])
    baseline = refit_model(create("popularity", {}, N_ITEMS), more, selected.fitted_models())
    assert baseline.counts is selected.parts[0].counts
    alone = create("popularity", {}, N_ITEMS)
    alone.fit(more)
    queries = validation.queries
    assert np.array_equal(baseline.top_k(queries, 10).ids, alone.top_k(queries, 10).ids)


def test_vectors_of_a_model_left_out_still_give_the_cosines_and_round_trip(fitted, tmp_path):
    """Word2Vec may be left out of the pool (its list finds nothing the others miss) while its
    vectors still describe each pair: the reranker keeps them, saved with it."""
    train, validation, reranker, _ = fitted
    unit = np.random.default_rng(2).normal(size=(N_ITEMS - 10, 4)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    rows = np.where(np.arange(N_ITEMS) < N_ITEMS - 10, np.arange(N_ITEMS), -1)
    vectors = ItemVectors(rows, unit)
    with_vectors = Reranker.of(reranker.parts, reranker.artists, vectors, **_params(reranker))
    assert "word2vec_cosine_last" in with_vectors.feature_names
    assert "word2vec_cosine_last" not in reranker.feature_names
    with_vectors.fit_statistics(train)
    with_vectors.learn(with_vectors.component_lists(validation.queries), validation)
    with_vectors.save(tmp_path / "reranker")
    loaded = load_recommender(tmp_path / "reranker")
    assert np.array_equal(loaded.vectors.unit, unit)
    assert np.array_equal(loaded.vectors.compact_of, rows)
    expected = with_vectors.top_k(validation.queries, 10)
    assert np.array_equal(loaded.top_k(validation.queries, 10).ids, expected.ids)


# Four queries whose labels are items 0 to 3, for the tests of which components join.
FOUR_LABELS = Sequences.from_lists([[0], [1], [2], [3]])


def scored_components(lists: dict[str, list[list[int]]], order: str) -> ScoredComponents:
    """Components named by the letters of ``order``, each proposing its ``lists`` (two items a
    query), best first."""
    results = [CandidateResult(n, n, "u", {}, {}, n, {}, 0.0, 0.0) for n in order]
    tops = [TopK(np.array(lists[n], np.int32), np.ones((4, 2), np.float32)) for n in order]
    return ScoredComponents(results, [create("popularity", {}, 10)] * len(order), tops)


def test_a_component_joins_only_for_relevant_items_no_other_proposes():
    """Four queries, label q: A finds queries 0, 1 and 2; B finds 1 and 3; C finds 0 only,
    which A finds too. Alone: A query 2, B query 3, C none."""
    labels = FOUR_LABELS
    lists = {
        "A": [[0, 9], [1, 9], [2, 9], [8, 9]],
        "B": [[7, 8], [1, 8], [7, 8], [3, 8]],
        "C": [[0, 5], [5, 6], [5, 6], [5, 6]],
    }
    components = partial(scored_components, lists)

    assert components("ABC").unique_label_shares(labels, 10) == [0.25, 0.25, 0.0]
    said = []
    kept = components("ABC").contributing(labels, 10, 0.1, said.append)
    assert [r.name for r in kept.results] == ["A", "B"] and len(kept.lists) == 2
    # without C, the query C found too is A's alone
    assert kept.unique_shares == {"A": 0.5, "B": 0.25, "C": 0.0}
    assert "['C']" in said[-1]
    # the best family (first) always joins, whatever it adds
    assert [r.name for r in components("CAB").contributing(labels, 10, 0.1).results] == [
        "C",
        "A",
        "B",
    ]
    assert len(components("ABC").contributing(labels, 10, 0.0).results) == 3


def test_two_components_finding_the_same_items_do_not_hide_each_other():
    """D and E both find query 1's label, which A does not: each alone adds nothing beside the
    other, but the pool needs one of them. The later one leaves; the earlier then adds 25%."""
    lists = {
        "A": [[0, 9], [8, 9], [8, 9], [8, 9]],
        "D": [[7, 8], [1, 8], [7, 8], [7, 8]],
        "E": [[5, 6], [1, 6], [5, 6], [5, 6]],
    }
    said = []
    kept = scored_components(lists, "ADE").contributing(FOUR_LABELS, 10, 0.1, said.append)
    assert [r.name for r in kept.results] == ["A", "D"]
    assert kept.unique_shares == {"A": 0.25, "D": 0.25, "E": 0.0}
    assert "['E']" in said[-1]


def test_recent_counts_add_a_repeated_track_and_need_no_sorted_rows():
    """The last tracks' counts sum over each of them, a repeated one twice; an unknown track is
    skipped; and rows stored out of column order (a matrix built elsewhere) give the same."""
    train = Sequences.from_lists([[0, 1, 2], [0, 1], [2, 3], [1, 3]])
    statistics = TrainStatistics.of(train, 5, np.full(5, -1, np.int32), window=2, keep_per_row=10)
    queries = Queries(Sequences.from_lists([[0, 2, -1, 0]]))
    proposals = TopK(np.array([[1, 3]], np.int32), np.array([[2.0, 1.0]], np.float32))
    names = feature_names(["rules"], with_vectors=False)

    def features(of: TrainStatistics) -> dict[int, dict[str, float]]:
        pool, values = pool_features([proposals], queries, of, None)
        return {item: dict(zip(names, values[i], strict=True)) for i, item in enumerate(pool.items)}

    row = features(statistics)
    assert row[1]["transitions_last_1"] == 2  # 0 -> 1 twice in train
    assert row[1]["transitions_last_3"] == 4  # the last three known: 0, 2, 0
    assert row[3]["transitions_last_1"] == 0 and row[3]["transitions_last_3"] == 1  # 2 -> 3 once
    shuffled = dataclasses.replace(
        statistics,
        transitions=_reversed_within_rows(statistics.transitions),
        cooccurrence=_reversed_within_rows(statistics.cooccurrence),
    )
    assert not shuffled.cooccurrence.has_sorted_indices
    assert features(shuffled) == row


def _reversed_within_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    order = np.concatenate(
        [np.arange(end - 1, start - 1, -1) for start, end in itertools.pairwise(matrix.indptr)]
    )
    return sp.csr_matrix((matrix.data[order], matrix.indices[order], matrix.indptr), matrix.shape)


def test_same_artist_counts_stay_within_their_query_at_the_largest_artist_codes():
    """(query, artist) pairs are one key each: the largest int32 code neither overflows nor
    meets another query's artist."""
    largest = np.iinfo(np.int32).max
    artists = np.array([largest, largest, 5, 0, -1], dtype=np.int32)
    train = Sequences.from_lists([[0, 1, 2, 3]])
    statistics = TrainStatistics.of(train, 5, artists, window=2, keep_per_row=10)
    queries = Queries(Sequences.from_lists([[0, 2, 0], [4]]))
    proposals = TopK(np.array([[1, 3], [1, 3]], np.int32), np.ones((2, 2), np.float32))
    pool, values = pool_features([proposals], queries, statistics, None)
    names = feature_names(["rules"], with_vectors=False)
    same = values[:, names.index("same_artist_tracks")]
    as_last = values[:, names.index("same_artist_as_last")]
    entries = zip(pool.rows, pool.items, same, as_last, strict=True)
    found = {(int(r), int(i)): (s, a) for r, i, s, a in entries}
    assert found == {(0, 1): (2, 1), (0, 3): (0, 0), (1, 1): (0, 0), (1, 3): (0, 0)}
