"""The MLflow pyfunc, logged as a "model from code".

Input: a DataFrame with a column ``tracks``, each row a list of track keys (``artist|||title``)
or "artist - title" strings as users type them (case-insensitive). Param ``k`` (default 10).
Output: one row per recommendation: ``row`` (input row), ``rank``, ``track_key``, ``artist``,
``title``, ``score``; never a track already in the input.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from ml.bundle import Bundle, load_bundle

OUTPUT_COLUMNS = ["row", "rank", "track_key", "artist", "title", "score"]


def resolve(bundle: Bundle, item: str) -> str:
    """A track key as given, or the key of an "artist - title" string; unknown items pass
    through, so they still count as already heard."""
    item = str(item).strip()
    if item in bundle.artist:
        return item
    return bundle.by_display_name.get(item.casefold(), item)


def recommend_frame(bundle: Bundle, model_input: pd.DataFrame, k: int) -> pd.DataFrame:
    if "tracks" not in model_input.columns:
        raise ValueError(f"expected a column 'tracks', got {list(model_input.columns)}")
    queries = []
    for value in model_input["tracks"]:
        items = value.tolist() if isinstance(value, np.ndarray) else value
        if isinstance(items, str) or not hasattr(items, "__iter__"):
            raise ValueError(f"each 'tracks' value must be a list of strings, got {items!r}")
        queries.append([resolve(bundle, item) for item in items])
    recommendations, scores = bundle.recommender.recommend_with_scores(queries, k)
    rows = [
        (row, rank, key, bundle.artist.get(key, ""), bundle.title.get(key, ""), float(score))
        for row, (keys, row_scores) in enumerate(zip(recommendations, scores, strict=True))
        for rank, (key, score) in enumerate(zip(keys, row_scores, strict=True), start=1)
    ]
    frame = pd.DataFrame(rows, columns=OUTPUT_COLUMNS)
    return frame.astype({"row": "int64", "rank": "int64", "score": "float64"})


class NextTrackModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.bundle = load_bundle(Path(context.artifacts["bundle"]))

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        k = int((params or {}).get("k", 10))
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        return recommend_frame(self.bundle, model_input, k)


mlflow.models.set_model(NextTrackModel())
