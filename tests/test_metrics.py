"""Metrics on hand-computed cases."""

import math

import pytest

from ml.metrics import label_ranks, next_track_metrics


def test_ranks_are_one_based_and_zero_when_absent():
    recs = [["a", "b", "c"], ["c", "b", "a"], ["x", "y", "z"]]
    assert label_ranks(recs, ["a", "a", "a"]).tolist() == [1, 3, 0]


def test_hit_rate_mrr_ndcg_coverage_by_hand():
    recs = [["a", "b", "c"], ["c", "b", "a"], ["x", "y", "z"], ["b", "a", "c"]]
    labels = ["a", "a", "a", "a"]  # ranks 1, 3, absent, 2
    m = next_track_metrics(recs, labels, catalog_size=10, ks=(1, 2, 3))
    assert m["hit_rate_at_1"] == pytest.approx(1 / 4)
    assert m["hit_rate_at_2"] == pytest.approx(2 / 4)
    assert m["hit_rate_at_3"] == pytest.approx(3 / 4)
    assert m["mrr_at_3"] == pytest.approx((1 + 1 / 3 + 0 + 1 / 2) / 4)
    assert m["mrr_at_2"] == pytest.approx((1 + 1 / 2) / 4)
    assert m["ndcg_at_3"] == pytest.approx((1 + 1 / math.log2(4) + 1 / math.log2(3)) / 4)
    # top-1 lists: a, c, x, b -> 4 of 10 tracks; top-3: a b c x y z -> 6 of 10
    assert m["coverage_at_1"] == pytest.approx(0.4)
    assert m["coverage_at_3"] == pytest.approx(0.6)
    assert m["queries"] == 4


def test_no_queries_is_an_error():
    with pytest.raises(ValueError, match="no queries"):
        next_track_metrics([], [], 5)
