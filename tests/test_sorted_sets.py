"""The sorted set operations give numpy's results, on the shapes the pipeline passes them."""

import numpy as np
import pytest

from ml.sorted_sets import isin, unique


@pytest.mark.parametrize("size", [0, 1, 7, 5_000])
def test_unique_is_numpys_unique(size):
    rng = np.random.default_rng(size)
    values = rng.integers(-3, size // 2 + 2, size).astype(np.int64)  # repeats and negatives
    result = unique(values)
    assert result.dtype == values.dtype
    np.testing.assert_array_equal(result, np.unique(values))


def test_unique_flattens_a_block_as_numpy_does():
    block = np.array([[5, 1, 5], [2, 1, 9]], dtype=np.int32)
    np.testing.assert_array_equal(unique(block), [1, 2, 5, 9])


def test_unique_refuses_floats():
    with pytest.raises(TypeError, match="float64"):
        unique(np.array([1.0, np.nan]))


@pytest.mark.parametrize("members_size", [0, 1, 300])
def test_isin_is_numpys_isin_for_lists_and_blocks(members_size):
    rng = np.random.default_rng(members_size)
    members = rng.integers(0, 500, members_size)  # unsorted, with repeats
    values = rng.integers(-1, 600, (40, 10))  # a block of keys, -1 for a missing entry
    result = isin(values, members)
    assert result.shape == values.shape
    np.testing.assert_array_equal(result, np.isin(values, members))
    np.testing.assert_array_equal(isin(values.ravel(), members), np.isin(values.ravel(), members))
