"""Item sequences encoded as integers: one flat id array and offsets (the CSR layout).

Every recommender family reads this form: playlists of the train split, query prefixes and labels
of validation and test, users' histories. Ids index a catalogue (``ml.catalogue``); ``-1`` marks an
item the catalogue does not know (it still counts as heard, but no model can score it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ml.sorted_sets import unique

UNKNOWN = -1


@dataclass(frozen=True)
class Sequences:
    items: np.ndarray  # int32, all sequences back to back
    offsets: np.ndarray  # int64, len(self) + 1, offsets[0] == 0

    def __post_init__(self) -> None:
        if self.offsets.ndim != 1 or len(self.offsets) == 0 or self.offsets[0] != 0:
            raise ValueError("offsets must be a 1-d array starting at 0")
        if self.offsets[-1] != len(self.items):
            raise ValueError(f"offsets end at {self.offsets[-1]}, items has {len(self.items)}")

    @classmethod
    def from_lists(cls, sequences: Iterable[Sequence[int]]) -> Sequences:
        lists = [np.asarray(s, dtype=np.int32) for s in sequences]
        lengths = np.array([len(s) for s in lists], dtype=np.int64)
        offsets = np.zeros(len(lists) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        items = np.concatenate(lists) if lists else np.empty(0, dtype=np.int32)
        return cls(items.astype(np.int32, copy=False), offsets)

    @classmethod
    def empty(cls, n: int) -> Sequences:
        """``n`` empty sequences."""
        return cls(np.empty(0, dtype=np.int32), np.zeros(n + 1, dtype=np.int64))

    @classmethod
    def from_lengths(cls, items: np.ndarray, lengths: np.ndarray) -> Sequences:
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(np.asarray(items, dtype=np.int32), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.items[self.offsets[i] : self.offsets[i + 1]]

    def to_lists(self) -> list[list[int]]:
        return [self[i].tolist() for i in range(len(self))]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row_of_each_item(self) -> np.ndarray:
        """The sequence index of every entry of ``items``."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.lengths)

    def position_of_each_item(self) -> np.ndarray:
        """0-based position of every entry within its sequence."""
        return np.arange(len(self.items), dtype=np.int64) - np.repeat(
            self.offsets[:-1], self.lengths
        )

    def age_of_each_item(self) -> np.ndarray:
        """0 for the last entry of each sequence, 1 for the one before, ..."""
        return np.repeat(self.offsets[1:], self.lengths) - 1 - np.arange(len(self.items))

    def take(self, rows: np.ndarray) -> Sequences:
        if len(rows) == 0:
            return Sequences(np.empty(0, dtype=np.int32), np.zeros(1, dtype=np.int64))
        index, lengths = entries_of_rows(self.offsets, rows)
        return Sequences.from_lengths(self.items[index], lengths)

    def sample(self, share: float, seed: int) -> Sequences:
        """A seeded sample of ``share`` of the sequences (at least one), in their order."""
        size = max(1, math.ceil(share * len(self)))
        rows = np.random.default_rng(seed).choice(len(self), size=size, replace=False)
        return self.take(np.sort(rows))

    def take_or_empty(self, rows: np.ndarray) -> Sequences:
        """Like ``take``; a row of -1 gives an empty sequence (a user this data does not have)."""
        rows = np.asarray(rows, dtype=np.int64)
        known = rows >= 0
        taken = self.take(np.where(known, rows, 0))
        if known.all():
            return taken
        return Sequences.from_lengths(
            taken.items[np.repeat(known, taken.lengths)], np.where(known, taken.lengths, 0)
        )

    def append(self, other: Sequences) -> Sequences:
        """Each sequence followed by the same row of ``other``."""
        if len(other) != len(self):
            raise ValueError(f"cannot append {len(other)} sequences to {len(self)}")
        rows = np.concatenate([self.row_of_each_item(), other.row_of_each_item()])
        items = np.concatenate([self.items, other.items])
        order = np.argsort(rows, kind="stable")
        return Sequences.from_lengths(items[order], self.lengths + other.lengths)

    def extend(self, other: Sequences) -> Sequences:
        """These sequences, then ``other``'s."""
        items = np.concatenate([self.items, other.items])
        return Sequences.from_lengths(items, np.concatenate([self.lengths, other.lengths]))

    def slice(self, start: int, stop: int) -> Sequences:
        """Rows start..stop-1, sharing memory with this one."""
        offsets = self.offsets[start : stop + 1]
        return Sequences(self.items[offsets[0] : offsets[-1]], offsets - offsets[0])

    def last(self, n: int) -> Sequences:
        """The last ``n`` entries of every sequence (all of a shorter one)."""
        keep = self.age_of_each_item() < n
        return Sequences.from_lengths(self.items[keep], np.minimum(self.lengths, n))

    def known_item_keys(self, n_items: int) -> np.ndarray:
        """row * n_items + item of every known item of each sequence (sorted, unique): the heard
        items to exclude, or the labels to find."""
        keep = self.items != UNKNOWN
        return unique(self.row_of_each_item()[keep] * n_items + self.items[keep])

    def known(self) -> Sequences:
        """Every sequence without its unknown (-1) entries."""
        keep = self.items != UNKNOWN
        lengths = np.bincount(self.row_of_each_item()[keep], minlength=len(self))
        return Sequences.from_lengths(self.items[keep], lengths)

    def to_csr(self, n_items: int, weights: np.ndarray | None = None) -> sp.csr_matrix:
        """rows x items; a repeated item sums its weights (1 each by default); unknowns dropped."""
        keep = self.items != UNKNOWN
        data = np.ones(keep.sum(), dtype=np.float32) if weights is None else weights[keep]
        data = data.astype(np.float32, copy=False)
        matrix = sp.csr_matrix(
            (data, (self.row_of_each_item()[keep], self.items[keep])),
            shape=(len(self), n_items),
        )
        matrix.sum_duplicates()
        return matrix

    def save(self, folder: Path, name: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{name}.items.npy", self.items)
        np.save(folder / f"{name}.offsets.npy", self.offsets)

    @classmethod
    def load(cls, folder: Path, name: str, mmap: bool = True) -> Sequences:
        """Memory-mapped by default: parallel steps share the page cache, not copies."""
        mode = "r" if mmap else None
        return cls(
            np.load(folder / f"{name}.items.npy", mmap_mode=mode),
            np.load(folder / f"{name}.offsets.npy", mmap_mode=mode),
        )


def entries_of_rows(offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the entries of ``rows`` lie in an array cut by ``offsets`` (or a CSR ``indptr``),
    row after row, and each row's length. Reads those rows' offsets only: at serving time the
    catalogue-long rest is not touched."""
    rows = np.asarray(rows, dtype=np.int64)
    starts = np.asarray(offsets[rows], dtype=np.int64)
    lengths = np.asarray(offsets[rows + 1], dtype=np.int64) - starts
    index = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    index += np.arange(lengths.sum(), dtype=np.int64)
    return index, lengths
