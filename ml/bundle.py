"""The selected model as files: what the MLflow pyfunc loads to recommend.

A bundle folder holds the embeddings (vectors.npy, keys.txt), the track table (track_key, artist,
title, train_count: names for output, popularity for fill) and config.json (hyperparameters, query
strategy). Saved by the pipeline, logged as the pyfunc's artifact, loaded by the pyfunc.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ml.baselines import MostPopular
from ml.embeddings import Embeddings, Word2VecParams
from ml.recommender import EmbeddingRecommender, QueryStrategy
from ml.retrieval import VectorIndex


@dataclass
class Bundle:
    recommender: EmbeddingRecommender
    artist: dict[str, str]
    title: dict[str, str]
    by_display_name: dict[str, str]  # "artist - title", lower-cased -> track_key
    config: dict


def display_name(artist: str, title: str) -> str:
    return f"{artist} - {title}".casefold()


def save_bundle(
    folder: Path,
    embeddings: Embeddings,
    strategy: QueryStrategy,
    tracks: list[dict],
    train_counts: dict[str, int],
    extra: dict | None = None,
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    embeddings.save(folder)
    pq.write_table(
        pa.table(
            {
                "track_key": [t["track_key"] for t in tracks],
                "artist": [t["artist"] for t in tracks],
                "title": [t["title"] for t in tracks],
                "train_count": [int(train_counts.get(t["track_key"], 0)) for t in tracks],
            }
        ),
        folder / "tracks.parquet",
    )
    config = {
        "params": embeddings.params.as_dict(),
        "strategy": strategy.as_dict(),
        "gensim_version": embeddings.gensim_version,
        **(extra or {}),
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def load_bundle(folder: Path) -> Bundle:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    embeddings = Embeddings.load(folder, Word2VecParams(**config["params"]))
    tracks = pq.read_table(folder / "tracks.parquet").to_pydict()
    counts = {
        key: count
        for key, count in zip(tracks["track_key"], tracks["train_count"], strict=True)
        if count > 0
    }
    recommender = EmbeddingRecommender(
        VectorIndex(embeddings.keys, np.asarray(embeddings.vectors)),
        MostPopular(counts),
        QueryStrategy(**config["strategy"]),
    )
    artist = dict(zip(tracks["track_key"], tracks["artist"], strict=True))
    title = dict(zip(tracks["track_key"], tracks["title"], strict=True))
    by_display_name = {
        display_name(a, t): key
        for key, a, t in zip(tracks["track_key"], tracks["artist"], tracks["title"], strict=True)
    }
    return Bundle(recommender, artist, title, by_display_name, config)
