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
    return _search(unique(members), values)[1]


def values_at(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``values[i]`` for each of ``wanted`` equal to ``keys[i]`` (``keys`` sorted and unique),
    0 for one that is not a key: a sorted map's lookup, in ``values``' dtype."""
    at, hit = _search(keys, wanted)
    found = np.zeros(at.shape, dtype=values.dtype)
    found[hit] = values[at[hit]]
    return found


def _search(keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``wanted`` would sit in the sorted ``keys``, and whether it is there."""
    wanted = np.asarray(wanted)
    if len(keys) == 0:
        return np.zeros(wanted.shape, dtype=np.int64), np.zeros(wanted.shape, dtype=bool)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return at, keys[at] == wanted
