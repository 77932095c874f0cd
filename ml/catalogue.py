"""The items a model can recommend: item id -> key, display names and train counts.

Stored as Parquet, so any key (a name with a newline, U+2028, a tab...) round-trips exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

CATALOGUE_FILE = "catalogue.parquet"


@dataclass(frozen=True)
class Catalogue:
    table: pa.Table  # key, name columns (e.g. artist, title), train_count; row i = item id i

    def __post_init__(self) -> None:
        # One chunk per column: ``take`` on a table of many chunks (Parquet row groups, read in
        # parallel) visits every chunk, so a request naming ten tracks paid for the catalogue.
        object.__setattr__(self, "table", self.table.combine_chunks())

    @property
    def keys(self) -> pa.Array:
        return self.table.column("key").combine_chunks()

    @property
    def train_counts(self) -> np.ndarray:
        return self.table.column("train_count").to_numpy()

    def __len__(self) -> int:
        return self.table.num_rows

    def ids_of(self, keys: pa.Array | list[str]) -> np.ndarray:
        """Item id of each key, -1 for a key not in the catalogue."""
        found = pc.index_in(pa.array(keys, pa.string()), value_set=self.keys)
        return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)

    def artist_codes(self) -> np.ndarray:
        """An int32 code per item for its artist (one code per distinct name), -1 where the
        catalogue has no artist column or the item no artist."""
        if "artist" not in self.table.column_names:
            return np.full(len(self), -1, dtype=np.int32)
        codes = pc.dictionary_encode(self.table.column("artist").combine_chunks()).indices
        return codes.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)

    def key_list(self) -> list[str]:
        return self.keys.to_pylist()

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(self.table, folder / CATALOGUE_FILE)

    @classmethod
    def load(cls, folder: Path) -> Catalogue:
        return cls(pq.read_table(folder / CATALOGUE_FILE))
