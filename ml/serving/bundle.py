"""The bundle: a fitted recommender of any family, its catalogue (ids -> keys and names, train
counts for the popularity fill) and a little JSON about where it came from. The pipeline saves
it, MLflow logs it as the pyfunc's artifact, the pyfunc loads it; none of them cares which
family won.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.catalogue import Catalogue
from ml.recommenders.base import Queries, Recommender, TopK
from ml.recommenders.families import load_recommender
from ml.recommenders.popularity import Popularity
from ml.sequences import Sequences

INFO_FILE = "bundle.json"
MODEL_DIR = "model"


@dataclass
class Bundle:
    model: Recommender
    catalogue: Catalogue
    popularity: Popularity
    info: dict

    def recommend(self, queries: Queries, k: int) -> tuple[TopK, np.ndarray]:
        """Top k per query, filled from popularity; the mask marks the filled slots."""
        return self.popularity.fill(self.model.top_k(queries, k), queries)


def save_bundle(folder: Path, model: Recommender, catalogue: Catalogue, info: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / MODEL_DIR)
    catalogue.save(folder)
    info = {"family": model.family, "model": model.name, **info}
    (folder / INFO_FILE).write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    return folder


def load_bundle(folder: Path) -> Bundle:
    catalogue = Catalogue.load(folder)
    popularity = Popularity(n_items=len(catalogue))
    popularity.counts = catalogue.train_counts.astype(np.int64)
    info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    return Bundle(load_recommender(folder / MODEL_DIR), catalogue, popularity, info)


def bundle_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def serving_latency_ms(model, n_queries: int, history: Sequences) -> float:
    """Median milliseconds to answer one query of a typical length, in process."""
    rows = np.arange(min(n_queries, len(history)))
    timings = []
    for row in rows:
        query = Queries(history.take(np.array([row])))
        started = time.perf_counter()
        model.top_k(query, 10)
        timings.append((time.perf_counter() - started) * 1000)
    return float(np.median(timings)) if timings else float("nan")
