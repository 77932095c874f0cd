"""Set operations on integer arrays (item keys, rows), by sorting.

numpy 2.4's ``np.unique`` (and ``np.isin``, which calls it) builds a hash table of the values
while holding the GIL: on the millions of distinct int64 keys a pool of candidates holds it took
18 times as long as a sort (docs/benchmarks.md), and threads scoring batches side by side waited
on each other. These give the same results.
"""

from __future__ import annotations

import numpy as np


def unique(values: np.ndarray) -> np.ndarray:
    """The distinct values, ascending (``np.unique`` of an integer array)."""
    values = np.asarray(values)
    if values.dtype.kind not in "iub":
        raise TypeError(f"sorted_sets.unique takes integers, not {values.dtype}")
    ordered = np.sort(values, axis=None)
    first = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def isin(values: np.ndarray, members: np.ndarray) -> np.ndarray:
    """For each of ``values``, whether it is one of ``members`` (``np.isin`` of integers)."""
    values = np.asarray(values)
    members = unique(members)
    if len(members) == 0:
        return np.zeros(values.shape, dtype=bool)
    at = np.minimum(np.searchsorted(members, values), len(members) - 1)
    return members[at] == values
