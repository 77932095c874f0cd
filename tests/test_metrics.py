"""Ranking metrics on hand-computed cases, for one and for several relevant items."""

import math

import numpy as np
import pytest

from ml.evaluation.metrics import (
    hit_rate_curve,
    metrics_by_query_length,
    paired_difference,
    ranking_metrics,
    warm_and_popularity_metrics,
)
from ml.sequences import Sequences

A, B, C, X, Y, Z = range(6)


def test_one_label_per_query_hit_rate_mrr_ndcg_coverage():
    top = np.array([[A, B, C], [C, B, A], [X, Y, Z], [B, A, C]], dtype=np.int32)
    labels = Sequences.from_lists([[A]] * 4)  # ranks 1, 3, absent, 2
    m = ranking_metrics(top, labels, n_items=10, ks=(1, 2, 3))
    assert m["hit_rate_at_1"] == pytest.approx(1 / 4)
    assert m["hit_rate_at_2"] == pytest.approx(2 / 4)
    assert m["hit_rate_at_3"] == pytest.approx(3 / 4)
    assert m["recall_at_3"] == m["hit_rate_at_3"]
    assert m["mrr_at_3"] == pytest.approx((1 + 1 / 3 + 1 / 2) / 4)
    assert m["ndcg_at_3"] == pytest.approx((1 + 1 / math.log2(4) + 1 / math.log2(3)) / 4)
    assert m["coverage_at_1"] == pytest.approx(4 / 10)  # a, c, x, b
    assert m["coverage_at_3"] == pytest.approx(6 / 10)


def test_several_relevant_items_ndcg_is_normalised_by_the_ideal_list():
    top = np.array([[A, B, C, -1]], dtype=np.int32)
    labels = Sequences.from_lists([[B, C, Z]])  # hits at ranks 2 and 3, one never recommended
    m = ranking_metrics(top, labels, n_items=10, ks=(2, 4))
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg_at_4"] == pytest.approx(dcg / ideal)
    assert m["recall_at_4"] == pytest.approx(2 / 3)
    assert m["hit_rate_at_2"] == 1.0
    assert m["ndcg_at_2"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))


def test_an_unknown_label_is_a_miss_not_a_query_left_out():
    top = np.array([[A, B], [A, B]], dtype=np.int32)
    labels = Sequences.from_lists([[A], [-1]])
    assert ranking_metrics(top, labels, n_items=5, ks=(2,))["hit_rate_at_2"] == 0.5


def test_curve_and_standard_errors():
    top = np.array([[A, B, C], [C, B, A], [X, Y, Z]], dtype=np.int32)
    labels = Sequences.from_lists([[A], [A], [A]])
    curve = hit_rate_curve(top, labels, n_items=6)
    assert curve.tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3])
    metrics = ranking_metrics(top, labels, n_items=6, ks=(3,))
    # of the mean over queries: a hit rate's is the binomial one, sqrt(p (1 - p) / n)
    assert metrics["hit_rate_at_3_stderr"] == pytest.approx(np.sqrt(2 / 3 * 1 / 3 / 3))
    ndcg = np.array([1.0, 0.5, 0.0])  # A at rank 1, rank 3, nowhere
    assert metrics["ndcg_at_3_stderr"] == pytest.approx(ndcg.std() / np.sqrt(3))


def test_a_paired_difference_and_its_standard_error_on_the_same_queries():
    labels = Sequences.from_lists([[A], [A], [A], [A]])
    mine = np.array([[A, B], [B, A], [A, B], [X, Y]], dtype=np.int32)  # MRR 1, 1/2, 1, 0
    theirs = np.array([[B, A], [B, A], [X, Y], [X, Y]], dtype=np.int32)  # 1/2, 1/2, 0, 0
    difference, error = paired_difference(mine, theirs, labels, 6, "mrr_at_2")
    per_query = np.array([0.5, 0.0, 1.0, 0.0])
    assert difference == pytest.approx(per_query.mean())
    assert error == pytest.approx(per_query.std() / 2)
    # What both find alike cancels: the same lists differ by exactly 0, with no error.
    assert paired_difference(mine, mine, labels, 6, "hit_rate_at_1") == (0.0, 0.0)
    with pytest.raises(ValueError, match="lists have 2 items; mrr_at_10 needs 10"):
        paired_difference(mine, theirs, labels, 6, "mrr_at_10")


def test_lists_too_short_for_k_are_refused():
    with pytest.raises(ValueError, match="metrics need 10"):
        ranking_metrics(np.zeros((1, 3), np.int32), Sequences.from_lists([[A]]), 5, (10,))


def test_warm_hit_rate_counts_only_queries_whose_label_was_played_in_train():
    """Four queries: label A (played in train) hit at rank 1; label Z (never played: cold) hit
    at rank 1 too, yet it is not warm; label -1 (unknown) missed; label B (warm) missed."""
    counts = np.array([8, 4, 2, 0, 0, 0])  # A, B, C played; X, Y, Z cold
    top = np.array([[A, C], [Z, A], [A, B], [C, A]], dtype=np.int32)
    labels = Sequences.from_lists([[A], [Z], [-1], [B]])
    m = warm_and_popularity_metrics(top, labels, counts, ks=(1, 2))
    assert m["warm_queries"] == 2
    assert m["warm_hit_rate_at_1"] == pytest.approx(1 / 2)  # A hit, B missed
    assert m["warm_hit_rate_at_2"] == pytest.approx(1 / 2)
    assert ranking_metrics(top, labels, 6, ks=(1,))["hit_rate_at_1"] == pytest.approx(2 / 4)
    # POP@K: plays of what was shown over the top track's 8.
    assert m["mean_popularity_at_1"] == pytest.approx((8 + 0 + 8 + 2) / 8 / 4)
    assert m["mean_popularity_at_2"] == pytest.approx((8 + 2 + 0 + 8 + 8 + 4 + 2 + 8) / 8 / 8)


def test_metrics_by_query_length_split_the_queries_into_their_buckets():
    history = Sequences.from_lists([[A], [A, B, C], [A] * 7, [B] * 12, [C, B]])
    top = np.array([[A], [B], [C], [X], [Y]], dtype=np.int32)
    labels = Sequences.from_lists([[A], [A], [C], [X], [A]])
    buckets = metrics_by_query_length(top, history, labels, 6, ks=(1,))
    assert list(buckets) == ["1-2", "3-5", "6-10", "11+"]
    assert buckets["1-2"]["queries"] == 2 and buckets["1-2"]["hit_rate_at_1"] == 0.5
    assert buckets["3-5"]["hit_rate_at_1"] == 0.0
    assert buckets["6-10"]["hit_rate_at_1"] == buckets["11+"]["hit_rate_at_1"] == 1.0
    short_only = metrics_by_query_length(
        top[:1], history.take(np.array([0])), labels.take(np.array([0])), 6, ks=(1,)
    )
    assert list(short_only) == ["1-2"]  # an empty bucket is left out, not a division by zero


def test_without_a_warm_label_the_warm_hit_rate_is_left_out_not_nan():
    """A source too small for any validation label to occur in train (the MPD slice): the
    figure is missing, and every metric stays a number the hand-over can store."""
    counts = np.array([3, 0, 0])
    m = warm_and_popularity_metrics(
        np.array([[0, 1]], dtype=np.int32), Sequences.from_lists([[2]]), counts, ks=(1, 2)
    )
    assert m == {"warm_queries": 0.0, "mean_popularity_at_1": 1.0, "mean_popularity_at_2": 0.5}
