"""SLIST's closed form against the stacked least-squares problem written out by hand, on five
tracks and three playlists; scoring and the pruned vocabulary."""

import numpy as np
import pytest

from ml.recommenders.base import Queries
from ml.recommenders.families import create, load_recommender
from ml.sequences import Sequences

PLAYLISTS = [[0, 1, 2], [1, 3], [2, 3, 4]]
PARAMS = {"alpha": 0.5, "l2": 1.0, "window": 2, "decay": 0.5, "max_items": 5}


def hand_weights(alpha: float, l2: float) -> np.ndarray:
    # X: playlists x tracks (SLIS).
    sessions = np.array(
        [[1, 1, 1, 0, 0],
         [0, 1, 0, 1, 0],
         [0, 0, 1, 1, 1]], dtype=float,
    )  # fmt: skip
    # One row per position t >= 1: the two tracks before it, the nearest weighted 1, the other
    # 0.5 (S), and the track at t (T).
    before = np.array(
        [[1, 0, 0, 0, 0],     # playlist 0, t=1: 0 -> 1
         [0.5, 1, 0, 0, 0],   # playlist 0, t=2: 0, 1 -> 2
         [0, 1, 0, 0, 0],     # playlist 1, t=1: 1 -> 3
         [0, 0, 1, 0, 0],     # playlist 2, t=1: 2 -> 3
         [0, 0, 0.5, 1, 0]],  # playlist 2, t=2: 2, 3 -> 4
    )  # fmt: skip
    after = np.array(
        [[0, 1, 0, 0, 0],
         [0, 0, 1, 0, 0],
         [0, 0, 0, 1, 0],
         [0, 0, 0, 1, 0],
         [0, 0, 0, 0, 1]], dtype=float,
    )  # fmt: skip
    # min alpha ||X - XB||^2 + (1 - alpha) ||T - SB||^2 + l2 ||B||^2 as one least squares.
    inputs = np.vstack([np.sqrt(alpha) * sessions, np.sqrt(1 - alpha) * before])
    targets = np.vstack([np.sqrt(alpha) * sessions, np.sqrt(1 - alpha) * after])
    return np.linalg.solve(inputs.T @ inputs + l2 * np.eye(5), inputs.T @ targets)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_closed_form_equals_the_hand_computation(alpha):
    model = create("slist", {**PARAMS, "alpha": alpha}, 5)
    model.fit(Sequences.from_lists(PLAYLISTS))
    np.testing.assert_allclose(model.weights, hand_weights(alpha, 1.0), atol=1e-5)


def test_scores_are_the_recent_tracks_times_the_weights_heard_left_out(tmp_path):
    model = create("slist", {**PARAMS, "last_n": 2, "recency_decay": 0.7}, 5)
    model.fit(Sequences.from_lists(PLAYLISTS))
    query = Queries(Sequences.from_lists([[0, 1]]))
    expected = np.array([0.7, 1, 0, 0, 0]) @ hand_weights(0.5, 1.0)
    expected[[0, 1]] = -np.inf  # heard
    expected[expected <= 0] = -np.inf  # no evidence
    ranked = [i for i in np.argsort(-expected, kind="stable") if np.isfinite(expected[i])]
    assert model.top_k(query, 5).ids[0][: len(ranked)].tolist() == ranked
    model.save(tmp_path)
    reopened = load_recommender(tmp_path)
    assert reopened.top_k(query, 5).ids.tolist() == model.top_k(query, 5).ids.tolist()


def test_the_vocabulary_is_the_most_played_tracks():
    # plays: track 0 once, 1, 2 and 3 twice, 4 once: the two most played, ties to the lower id.
    model = create("slist", {**PARAMS, "max_items": 2}, 5)
    model.fit(Sequences.from_lists(PLAYLISTS))
    assert model.vocabulary.tolist() == [1, 2]
    scores = model.score(Queries(Sequences.from_lists([[0, 1], [4]])))
    assert set(scores.indices.tolist()) <= {1, 2}
    assert scores[1].nnz == 0  # a query of tracks outside the vocabulary: no evidence
