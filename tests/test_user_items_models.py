"""EASE against a numpy reference, the two-tower on a synthetic set whose answer is known, and the
save/load round trip of both."""

import numpy as np
import pytest
import scipy.sparse as sp

from ml.datasets.evaluation_split import EvaluationSplit
from ml.evaluation.user_items import FoldResult, best
from ml.recommenders.base import CannotFit, FitInputs, Queries
from ml.recommenders.ease import Ease, EaseParams
from ml.recommenders.families import load_recommender
from ml.recommenders.two_tower import TwoTower, TwoTowerParams
from ml.sequences import UNKNOWN, Sequences

# 7 users x 4 items; user 4 has item 1 twice (it counts once); no two scores of a row tie
HISTORIES = [[0, 1], [1, 2], [0, 2, 3], [3], [1, 1, 3], [0, 1], [1]]


def test_ease_matches_the_closed_form_computed_here():
    l2 = 2.0
    x = np.zeros((len(HISTORIES), 4))
    for user, items in enumerate(HISTORIES):
        x[user, items] = 1.0
    p = np.linalg.inv(x.T @ x + l2 * np.eye(4))
    reference = np.eye(4) - p @ np.diag(1.0 / np.diag(p))
    assert np.allclose(np.diag(reference), 0.0)
    model = Ease(EaseParams(l2=l2), n_items=4)
    model.fit(Sequences.from_lists(HISTORIES))
    assert np.allclose(model.weights, reference, atol=1e-6)
    queries = Queries(Sequences.from_lists([[0], [UNKNOWN, 3]]))
    assert np.allclose(model.score(queries), [reference[0], reference[3]], atol=1e-6)
    top = model.top_k(queries, 3)
    expected = [np.argsort(-reference[0], kind="stable"), np.argsort(-reference[3], kind="stable")]
    assert top.ids[0].tolist() == [i for i in expected[0] if i != 0][:3]
    assert top.ids[1].tolist() == [i for i in expected[1] if i != 3][:3]


def test_ease_refuses_a_catalogue_too_large_for_a_dense_inverse():
    model = Ease(EaseParams(max_items=3), n_items=4)
    with pytest.raises(CannotFit, match=r"4 items need a dense 4 x 4 inverse.*max_items is 3"):
        model.fit(Sequences.from_lists(HISTORIES))


def two_groups(users_per_group: int = 12, items_per_group: int = 5):
    """Group g likes items g*5 .. g*5+4; each user has all of them but one, which is its answer."""
    histories, answers = [], []
    for group in range(2):
        liked = list(range(group * items_per_group, (group + 1) * items_per_group))
        for u in range(users_per_group):
            missing = liked[u % items_per_group]
            histories.append([i for i in liked if i != missing])
            answers.append(missing)
    return Sequences.from_lists(histories), np.array(answers)


FAST = {"embedding_dim": 8, "negatives": 5, "epochs": 40, "learning_rate": 0.05, "batch_size": 16}


def test_two_tower_ranks_the_held_out_item_of_its_group_first():
    train, answers = two_groups()
    users = np.arange(len(train))
    validation = EvaluationSplit(
        "validation", Queries(train, users), Sequences.from_lists([[a] for a in answers])
    )
    seen = []
    model = TwoTower(TwoTowerParams(**FAST, patience=0), n_items=10)
    model.fit_inputs(
        FitInputs(train=train, validation=validation, on_epoch=lambda e, m: seen.append((e, m)))
    )
    top = model.top_k(Queries(train, users), 1)
    assert (top.ids[:, 0] == answers).all()
    assert [e for e, _ in seen] == list(range(1, 41))
    assert {"train_loss", "ndcg_at_10", "hit_rate_at_10"} <= set(seen[-1][1])
    assert seen[-1][1]["train_loss"] < seen[0][1]["train_loss"]
    # a user it has never seen, with three items of group 1: the other two come first
    unknown = Queries(Sequences.from_lists([[5, 6, 7]]), np.array([UNKNOWN]))
    assert sorted(model.top_k(unknown, 2).ids[0].tolist()) == [8, 9]


def test_two_tower_repeats_for_a_seed_and_not_for_another():
    train, _ = two_groups()
    fits = []
    for seed in (3, 3, 4):
        model = TwoTower(TwoTowerParams(**{**FAST, "epochs": 3}, seed=seed), n_items=10)
        model.fit(train)
        fits.append(model.item_vectors)
    assert np.array_equal(fits[0], fits[1])
    assert not np.allclose(fits[0], fits[2])


def test_two_tower_early_stopping_keeps_the_best_epoch_for_the_refit():
    train, _ = two_groups()
    # every label is an item no model knows: NDCG stays 0, the first epoch stays the best
    validation = EvaluationSplit(
        "validation", Queries(train, np.arange(len(train))), Sequences.from_lists([[UNKNOWN]] * 24)
    )
    model = TwoTower(TwoTowerParams(**FAST, patience=2), n_items=10)
    model.fit_inputs(FitInputs(train=train, validation=validation))
    assert model.training["best_epoch"] == 1.0 and model.training["epochs_run"] == 3.0
    assert model.refit_params().epochs == 1


def test_two_tower_item_features_join_the_item_tower():
    train, answers = two_groups()
    group = np.repeat([0, 1], 5)
    features = sp.csr_matrix((np.ones(10), (np.arange(10), group)), shape=(10, 2))
    model = TwoTower(TwoTowerParams(**{**FAST, "epochs": 80}, item_features=True), n_items=10)
    with pytest.raises(ValueError, match="item_features needs an items x features matrix"):
        model.fit(train)
    model.fit_inputs(FitInputs(train=train, item_features=features))
    assert (model.top_k(Queries(train, np.arange(len(train))), 1).ids[:, 0] == answers).all()
    assert model.name.endswith("_feat_s0")


def test_two_tower_recency_prior_adds_decayed_popularity_when_ranking():
    train, _ = two_groups()
    times = np.zeros(len(train.items))
    times[train.items == 9] = 28 * 86_400.0  # item 9's interactions are 28 days newer
    model = TwoTower(TwoTowerParams(**{**FAST, "epochs": 2}, prior_half_life_days=14), n_items=10)
    model.fit_inputs(FitInputs(train=train, times=times))
    age_days = (times.max() - times) / 86_400
    expected = np.log1p(np.bincount(train.items, weights=0.5 ** (age_days / 14), minlength=10))
    assert np.allclose(model.recent_log_counts, expected)
    queries = Queries(train.slice(0, 3), np.arange(3))
    view = model.with_scoring(recency_prior=2.0)
    assert np.allclose(view.score(queries) - model.score(queries), 2.0 * expected[None, :])
    assert model.params.recency_prior == 0.0 and view.name.endswith("+prior2_hl14d")
    # the penalty takes the all-time popularity back: with equal weights only the trend is left
    trend = view.with_scoring(popularity_penalty=2.0)
    all_time = np.log1p(np.bincount(train.items, minlength=10))
    assert np.allclose(trend.score(queries) - view.score(queries), -2.0 * all_time[None, :])
    assert trend.name.endswith("+prior2_hl14d-pop2")


def test_selection_takes_the_best_ndcg_above_the_coverage_floor():
    results = [
        FoldResult(name, "two_tower", {}, {"ndcg_at_10": n, "hit_rate_at_10": h,
                                           "coverage_at_10": c}, 0.0, {})
        for name, n, h, c in [("narrow", 0.30, 0.7, 0.10), ("wide", 0.20, 0.6, 0.25),
                              ("wider", 0.20, 0.5, 0.40), ("widest", 0.10, 0.4, 0.50)]
    ]  # fmt: skip
    assert best(results).name == "narrow"
    assert best(results, min_coverage=0.2).name == "wide"  # equal NDCG: the better hit rate
    with pytest.raises(ValueError, match=r"reaches coverage_at_10 0\.6; the widest is widest"):
        best(results, min_coverage=0.6)


def test_two_tower_recency_weights_need_times():
    train, _ = two_groups()
    model = TwoTower(TwoTowerParams(**{**FAST, "epochs": 2}, half_life_days=7), n_items=10)
    with pytest.raises(ValueError, match="half_life_days needs the interactions' times"):
        model.fit(train)
    model.fit_inputs(
        FitInputs(train=train, times=np.arange(len(train.items), dtype=np.float64) * 86_400)
    )
    assert model.training["epochs_run"] == 2.0


@pytest.mark.parametrize(
    "model",
    [
        Ease(EaseParams(l2=5.0), n_items=10),
        TwoTower(TwoTowerParams(**FAST, recency_prior=0.5), n_items=10),
    ],
    ids=["ease", "two_tower"],
)
def test_save_load_round_trip(model, tmp_path):
    train, _ = two_groups()
    model.fit(train)
    model.save(tmp_path / "model")
    loaded = load_recommender(tmp_path / "model")
    assert type(loaded) is type(model) and loaded.params == model.params
    queries = Queries(train, np.r_[np.arange(len(train) - 1), UNKNOWN])
    before, after = model.top_k(queries, 5), loaded.top_k(queries, 5)
    assert np.array_equal(before.ids, after.ids) and np.allclose(before.scores, after.scores)
