"""Ranking metrics on hand-computed cases, for one and for several relevant items."""

import math

import numpy as np
import pytest

from ml.evaluation.metrics import hit_rate_curve, ranking_metrics
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


def test_lists_too_short_for_k_are_refused():
    with pytest.raises(ValueError, match="metrics need 10"):
        ranking_metrics(np.zeros((1, 3), np.int32), Sequences.from_lists([[A]]), 5, (10,))
