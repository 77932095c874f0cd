"""The next-track MLflow pyfunc, logged as a "model from code"; serves any family's bundle.

Input: a DataFrame with a column ``tracks``, each row a list of track keys (``artist|||title``)
or "artist - title" strings as people type them (case-insensitive). Param ``k`` (default 10).
Output: one row per recommendation: ``row`` (input row), ``rank``, ``track_key``, ``artist``,
``title``, ``score``; never a track already in the input; score 0 marks a slot filled from
popularity (the model had nothing more to say).
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ml.recommenders.base import Queries
from ml.sequences import Sequences
from ml.serving.bundle import Bundle, load_bundle
from ml.serving.requests import BadRequest, requested_k, string_list

OUTPUT_COLUMNS = ["row", "rank", "track_key", "artist", "title", "score"]
logger = logging.getLogger(__name__)


def display_names(bundle: Bundle) -> pa.Array:
    table = bundle.catalogue.table
    return pc.utf8_lower(
        pc.binary_join_element_wise(table.column("artist"), table.column("title"), " - ")
    ).combine_chunks()


def parse_queries(model_input: pd.DataFrame) -> list[list[str]]:
    if "tracks" not in model_input.columns:
        raise BadRequest(f"expected a column 'tracks', got {list(model_input.columns)}")
    column = model_input["tracks"]
    return [string_list(value, row, "tracks", "track") for row, value in enumerate(column)]


def encode(bundle: Bundle, names: pa.Array, queries: list[list[str]]) -> Queries:
    """Item ids of what each query heard: an exact key, else "artist - title"; -1 if unknown."""
    flat = pa.array([item for query in queries for item in query], pa.string())
    by_key = bundle.catalogue.ids_of(flat)
    by_name = pc.index_in(pc.utf8_lower(flat), value_set=names).fill_null(-1).to_numpy()
    ids = np.where(by_key >= 0, by_key, by_name).astype(np.int32)
    lengths = np.array([len(q) for q in queries], dtype=np.int64)
    history = Sequences.from_lengths(ids, lengths)
    for row, query in enumerate(queries):
        unknown = [item for item, i in zip(query, history[row], strict=True) if i < 0]
        if unknown:
            logger.info(
                "row %d: %d of %d tracks unknown: %s", row, len(unknown), len(query), unknown
            )
    return Queries(history)


def recommend_frame(bundle: Bundle, names: pa.Array, model_input: pd.DataFrame, k: int):
    queries = encode(bundle, names, parse_queries(model_input))
    top, filled = bundle.recommend(queries, k)
    row, slot = np.nonzero(top.ids >= 0)
    items = top.ids[row, slot]
    chosen = bundle.catalogue.table.take(pa.array(items)).to_pydict()
    frame = pd.DataFrame(
        {
            "row": row.astype(np.int64),
            "rank": (slot + 1).astype(np.int64),
            "track_key": chosen["key"],
            "artist": chosen["artist"],
            "title": chosen["title"],
            "score": np.where(filled[row, slot], 0.0, top.scores[row, slot]).astype(np.float64),
        }
    )
    return frame[OUTPUT_COLUMNS]


class NextTrackModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.bundle = load_bundle(Path(context.artifacts["bundle"]))
        self.names = display_names(self.bundle)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        return recommend_frame(self.bundle, self.names, model_input, requested_k(params))


mlflow.models.set_model(NextTrackModel())
