"""What a served model looks up at each request, indexed once when its bundle loads: the
catalogue id of a track as people type it, of an item id, the model's row of a user id. A request
then costs what it holds, not what the catalogue holds: ``pyarrow.compute.index_in`` built a hash
table of every key at each call.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml.catalogue import Catalogue


class HashIndex:
    """Positions of strings by their hash, sorted once; a lookup is a binary search, and each
    candidate is compared with the string asked for (two strings can share a hash). Python's own
    ``hash``: salted per process, which is fine for an index built and asked in one process."""

    def __init__(self, texts: list[str], preferred_first: np.ndarray | None = None):
        """``preferred_first``: a sort key per position; among equal strings the lowest is
        found (then the lowest position)."""
        hashes = np.fromiter(map(hash, texts), np.int64, len(texts))
        positions = np.arange(len(texts))
        preference = () if preferred_first is None else (preferred_first,)
        order = np.lexsort((positions, *preference, hashes))
        self.hashes = hashes[order]
        self.positions = order

    def find(self, values: list[str], text_at: Callable[[int], str]) -> np.ndarray:
        """The position of each value (-1: absent); ``text_at`` gives the string at a position."""
        wanted = np.fromiter(map(hash, values), np.int64, len(values))
        first = np.searchsorted(self.hashes, wanted, "left")
        last = np.searchsorted(self.hashes, wanted, "right")
        found = np.full(len(values), -1, np.int64)
        for j, value in enumerate(values):
            for position in self.positions[first[j] : last[j]]:
                if text_at(position) == value:
                    found[j] = position
                    break
        return found


class ExactLookup:
    """Positions of exact strings (item ids, user ids) in an Arrow string array."""

    def __init__(self, texts: pa.Array):
        self.texts = texts
        self.index = HashIndex(texts.to_pylist())

    def positions(self, values: list[str | None]) -> np.ndarray:
        """int64 position of each value, -1 for one absent (or None)."""
        found = np.full(len(values), -1, np.int64)
        asked = [j for j, value in enumerate(values) if value is not None]
        found[asked] = self.index.find([values[j] for j in asked], self._text_at)
        return found

    def _text_at(self, position: int) -> str:
        return self.texts[position].as_py()


def loose(text: str) -> str:
    """A typed track as compared: lower case, white space runs as one space, none at the ends
    nor around the key's ``|||``."""
    return " ".join(text.lower().split()).replace(" |||", "|||").replace("||| ", "|||")


class TrackLookup:
    """Catalogue ids of tracks as people type them: the exact key (``artist|||title``), else the
    key or "artist - title" with case and white space ignored (``loose``); where several tracks
    match (names differing only in case), the most played in train."""

    def __init__(self, catalogue: Catalogue):
        table = catalogue.table
        self.keys = catalogue.keys
        self.names = pc.binary_join_element_wise(
            table.column("artist"), table.column("title"), " - "
        ).combine_chunks()
        keys = self.keys.to_pylist()
        most_played_first = -catalogue.train_counts.astype(np.int64)
        self.exact = HashIndex(keys)
        # Positions 0..n-1 are the keys' loose forms, n..2n-1 the names'.
        forms = [loose(key) for key in keys] + [loose(name) for name in self.names.to_pylist()]
        self.loose = HashIndex(forms, np.tile(most_played_first, 2))

    def ids_of(self, typed: list[str]) -> np.ndarray:
        """int32 catalogue id of each typed track, -1 for one the catalogue does not have."""
        ids = self.exact.find(typed, lambda position: self.keys[position].as_py())
        missing = np.flatnonzero(ids < 0)
        found = self.loose.find([loose(typed[j]) for j in missing], self._loose_form)
        ids[missing] = np.where(found >= 0, found % len(self.keys), -1)
        return ids.astype(np.int32)

    def _loose_form(self, position: int) -> str:
        n = len(self.keys)
        text = self.keys[position] if position < n else self.names[position - n]
        return loose(text.as_py())
