"""The next-track MLflow pyfunc, logged as a "model from code"; serves any family's bundle.

Input: a DataFrame with a column ``tracks``, each row a list of track keys (``artist|||title``)
or "artist - title" strings as people type them (case and white space ignored; see
``ml.serving.lookup.TrackLookup``). Param ``k`` (default 10,
at most ``MAX_K``). Output: one row per recommendation: ``row`` (input row), ``rank``,
``track_key``, ``artist``, ``title``, ``score``; never a track already in the input; score 0
marks a slot filled from popularity (the model had nothing more to say).

Bad input (a row that is not a list, an item that is null, not a string or blank, k < 1) is
refused with a ``BadRequest`` naming the row and item: HTTP 400 under ``mlflow models serve``.
Tracks the model does not know, and a k above ``MAX_K``, are written to the server's log.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema
from mlflow.types.schema import AnyType

from ml.recommenders.base import Queries
from ml.sequences import Sequences
from ml.serving.bundle import Bundle, first_keys, load_bundle
from ml.serving.lookup import TrackLookup
from ml.serving.requests import (
    DEFAULT_K,
    MAX_REPORTED,
    BadRequest,
    log_to_stderr_unless_configured,
    log_unknown,
    requested_k,
    shown,
    shown_list,
)

# Declared, not inferred. `tracks` is Any so that MLflow hands each row's JSON value over as
# sent: its Array(string) enforcement turns a list holding a null into other strings (under
# pandas 3, ["Artist|||Title", null] arrives as ["A", "n"], silently a playlist of unknown
# tracks) and refuses a non-list without naming the row; parse_queries checks both. Integer
# output columns are declared as such (inferring them warns that ints cannot hold missing
# values; these never miss).
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec(AnyType(), "tracks")]),
    outputs=Schema(
        [
            ColSpec(DataType.long, "row"),
            ColSpec(DataType.long, "rank"),
            ColSpec(DataType.string, "track_key"),
            ColSpec(DataType.string, "artist"),
            ColSpec(DataType.string, "title"),
            ColSpec(DataType.double, "score"),
        ]
    ),
    params=ParamSchema([ParamSpec("k", DataType.long, DEFAULT_K)]),
)


def example_input(bundle_dir: Path) -> pd.DataFrame:
    """The input example logged with the model: a playlist of the catalogue's first three
    tracks (read from the bundle's catalogue; MLflow loads the whole model to try it)."""
    return pd.DataFrame({"tracks": [first_keys(bundle_dir, 3)]})


def parse_queries(model_input: pd.DataFrame) -> list[list[str]]:
    """Each row's tracks, stripped; every bad row and item is named (up to MAX_REPORTED)."""
    if "tracks" not in model_input.columns:
        raise BadRequest(f"expected a column 'tracks', got {shown_list(list(model_input.columns))}")
    queries, problems = [], []
    expected = 'a non-empty string (a track key or "artist - title")'
    for row, value in enumerate(model_input["tracks"]):
        items = value.tolist() if isinstance(value, np.ndarray) else value
        if not isinstance(items, list | tuple):
            problems.append(f"row {row}: tracks must be a list of tracks, got {shown(items)}")
            continue
        problems += [
            f"row {row}: tracks[{position}] must be {expected}, got {shown(item)}"
            for position, item in enumerate(items)
            if not isinstance(item, str) or not item.strip()
        ]
        queries.append([item.strip() for item in items if isinstance(item, str)])
    if problems:
        more = len(problems) - MAX_REPORTED
        raise BadRequest(
            "; ".join(problems[:MAX_REPORTED]) + (f"; and {more} more" if more > 0 else "")
        )
    return queries


def encode(lookup: TrackLookup, queries: list[list[str]]) -> Queries:
    """Item ids of what each query heard (-1: unknown to the model)."""
    flat = [item for query in queries for item in query]
    lengths = np.array([len(q) for q in queries], dtype=np.int64)
    history = Sequences.from_lengths(lookup.ids_of(flat), lengths)
    log_unknown("tracks", queries, history)
    return Queries(history)


def recommend_frame(bundle: Bundle, lookup: TrackLookup, model_input: pd.DataFrame, k: int):
    queries = encode(lookup, parse_queries(model_input))
    top, filled = bundle.recommend(queries, k)
    row, slot = np.nonzero(top.ids >= 0)
    items = top.ids[row, slot]
    chosen = bundle.catalogue.table.take(pa.array(items)).to_pydict()
    return pd.DataFrame(  # in the signature's order of outputs
        {
            "row": row.astype(np.int64),
            "rank": (slot + 1).astype(np.int64),
            "track_key": chosen["key"],
            "artist": chosen["artist"],
            "title": chosen["title"],
            "score": np.where(filled[row, slot], 0.0, top.scores[row, slot]).astype(np.float64),
        }
    )


class NextTrackModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        log_to_stderr_unless_configured()
        self.bundle = load_bundle(Path(context.artifacts["bundle"]))
        self.lookup = TrackLookup(self.bundle.catalogue)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        return recommend_frame(self.bundle, self.lookup, model_input, requested_k(params))


mlflow.models.set_model(NextTrackModel())
