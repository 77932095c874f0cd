"""The next-track dataset: playlist_splits and dim_tracks read once, encoded with the train
split's catalogue (tracks first seen in train order), and saved as memory-mappable arrays.

Validation and test queries are all tracks of a playlist but the last; the label is the last.
A track that never occurs in train gets id -1: it still counts as heard, and as a label it is a
miss for every model (the denominator of every metric includes it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.catalogue import Catalogue
from ml.datasets.evaluation_split import EvaluationSplit
from ml.recommenders.base import Queries
from ml.sequences import Sequences
from ml.warehouse import read_only

SUMMARY_FILE = "dataset.json"
TEST_KEYS_FILE = "test_keys.parquet"


@dataclass(frozen=True)
class RefitTrain:
    sequences: Sequences
    # Validation plays of tracks train never saw: the catalogue is train's, so no model can
    # learn them; left out (and reported), their neighbours become adjacent.
    dropped_plays: int


@dataclass(frozen=True)
class NextTrackData:
    catalogue: Catalogue
    train: Sequences
    validation: EvaluationSplit
    test: EvaluationSplit
    fingerprint: str  # sha256 of everything the models see: same fingerprint, same input
    test_keys: pa.Table  # test queries and labels as track keys: any model can be re-scored

    def train_and_validation(self) -> RefitTrain:
        """Train's playlists, then each validation playlist whole (query and label): what the
        selected model and the baselines are refit on before test."""
        whole = self.validation.queries.history.append(self.validation.labels)
        known = whole.known()
        return RefitTrain(self.train.extend(known), len(whole.items) - len(known.items))

    def summary(self) -> dict:
        unknown = {
            split.name: float((split.labels.items < 0).mean()) if len(split) else 0.0
            for split in (self.validation, self.test)
        }
        return {
            "fingerprint": self.fingerprint,
            "tracks": len(self.catalogue),
            "train_playlists": len(self.train),
            "train_rows": len(self.train.items),
            "validation_queries": len(self.validation),
            "test_queries": len(self.test),
            "validation_labels_unknown_share": unknown["validation"],
            "test_labels_unknown_share": unknown["test"],
            "longest_train_playlist": int(self.train.lengths.max(initial=0)),
        }

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.catalogue.save(folder)
        self.train.save(folder, "train")
        self.validation.save(folder)
        self.test.save(folder)
        pq.write_table(self.test_keys, folder / TEST_KEYS_FILE)
        (folder / SUMMARY_FILE).write_text(json.dumps(self.summary(), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> NextTrackData:
        summary = json.loads((folder / SUMMARY_FILE).read_text(encoding="utf-8"))
        return cls(
            Catalogue.load(folder),
            Sequences.load(folder, "train"),
            EvaluationSplit.load(folder, "validation"),
            EvaluationSplit.load(folder, "test"),
            summary["fingerprint"],
            pq.read_table(folder / TEST_KEYS_FILE),
        )


def read_next_track_data(warehouse: Path) -> NextTrackData:
    """Encode the warehouse's split (playlists in source order: first_row_id)."""
    with read_only(warehouse) as connection:
        splits = connection.sql(
            "select split, tracks, query, label from playlist_splits order by first_row_id"
        ).to_arrow_table()
        tracks = connection.sql("select track_key, artist, title from dim_tracks").to_arrow_table()
    split = splits.column("split")
    train_lists = splits.filter(pc.equal(split, "train")).column("tracks").combine_chunks()
    flat = pc.list_flatten(train_lists)
    encoded = pc.dictionary_encode(flat)
    keys = encoded.dictionary
    train = Sequences.from_lengths(
        encoded.indices.to_numpy().astype(np.int32),
        pc.list_value_length(train_lists).to_numpy().astype(np.int64),
    )
    catalogue = _catalogue(keys, train, tracks)
    validation, test = _evaluation_splits(("validation", "test"), splits, catalogue)
    fingerprint = _fingerprint(keys, train, validation, test)
    test_keys = splits.filter(pc.equal(split, "test")).select(["query", "label"])
    return NextTrackData(catalogue, train, validation, test, fingerprint, test_keys)


def _catalogue(keys: pa.Array, train: Sequences, tracks: pa.Table) -> Catalogue:
    row = pc.index_in(keys, value_set=tracks.column("track_key").combine_chunks())
    names = tracks.take(row)
    counts = np.bincount(train.items, minlength=len(keys)).astype(np.int64)
    return Catalogue(
        pa.table(
            {
                "key": keys,
                "artist": names.column("artist"),
                "title": names.column("title"),
                "train_count": counts,
            }
        )
    )


def _evaluation_splits(
    names: tuple[str, ...], splits: pa.Table, catalogue: Catalogue
) -> list[EvaluationSplit]:
    """The named splits, every query and label key looked up in one call: each call hashes the
    whole catalogue (2.9M keys on the full Kaggle file)."""
    rows = [splits.filter(pc.equal(splits.column("split"), name)) for name in names]
    queries = [part.column("query").combine_chunks() for part in rows]
    keys = [pc.list_flatten(q) for q in queries] + [
        r.column("label").combine_chunks() for r in rows
    ]
    ids = np.split(catalogue.ids_of(pa.concat_arrays(keys)), np.cumsum([len(k) for k in keys])[:-1])
    return [
        EvaluationSplit(
            name,
            Queries(
                Sequences.from_lengths(history, pc.list_value_length(q).to_numpy().astype(np.int64))
            ),
            Sequences.from_lengths(labels, np.ones(len(labels), dtype=np.int64)),
        )
        for name, q, history, labels in zip(
            names, queries, ids[: len(names)], ids[len(names) :], strict=True
        )
    ]


def _fingerprint(keys: pa.Array, *parts: Sequences | EvaluationSplit) -> str:
    digest = hashlib.sha256()
    for buffer in keys.buffers():
        if buffer is not None:
            digest.update(buffer)
    for part in parts:
        arrays = (
            [part.items, part.offsets]
            if isinstance(part, Sequences)
            else [part.queries.history.items, part.queries.history.offsets, part.labels.items]
        )
        for array in arrays:
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]
