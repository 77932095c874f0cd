"""The bundle: a fitted recommender of any family, its catalogue (ids -> keys and names, train
counts for the popularity fill) and a little JSON about where it came from. The pipeline saves
it, MLflow logs it as the pyfunc's artifact, the pyfunc loads it; none of them cares which
family won.

A user-items bundle also carries the users the model knows (``users.parquet``: row i is the
model's user index i) and each one's history (catalogue ids): what is never recommended to them
again, and what families that score from a history score them from.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ml.catalogue import Catalogue
from ml.recommenders.base import Queries, Recommender, TopK
from ml.recommenders.families import load_recommender
from ml.recommenders.popularity import Popularity
from ml.sequences import Sequences

INFO_FILE = "bundle.json"
MODEL_DIR = "model"
USERS_FILE = "users.parquet"
HISTORIES = "histories"


@dataclass
class Bundle:
    model: Recommender
    catalogue: Catalogue
    popularity: Popularity
    info: dict
    users: pa.Array | None = None  # user id of each of the model's user rows (user-items)
    histories: Sequences | None = None  # each known user's items, by user row

    def recommend(self, queries: Queries, k: int) -> tuple[TopK, np.ndarray]:
        """Top k per query, filled from popularity; the mask marks the filled slots."""
        return self.popularity.fill(self.model.top_k(queries, k), queries)

    def user_queries(self, rows: np.ndarray, recent: Sequences) -> Queries:
        """Queries of these user rows (-1: unknown): each known user's stored history, then its
        ``recent`` items (catalogue ids, -1 for unknown ones)."""
        if self.histories is None:
            raise ValueError("this bundle carries no user histories: it is not a user-items bundle")
        return Queries(self.histories.take_or_empty(rows).append(recent), rows)

    def recommend_users(self, queries: Queries, k: int) -> tuple[TopK, np.ndarray]:
        """Like ``recommend`` for user queries; a query the model knows nothing of (no user row,
        no known item) is not asked: its whole list is the popularity fill."""
        users = queries.users if queries.users is not None else np.full(len(queries), -1)
        informed = np.flatnonzero((users >= 0) | (queries.history.known().lengths > 0))
        n = len(queries)
        top = TopK(np.full((n, k), -1, np.int32), np.full((n, k), -np.inf, np.float32))
        if len(informed):
            answered = self.model.top_k(queries.take(informed), k)
            top.ids[informed], top.scores[informed] = answered.ids, answered.scores
        return self.popularity.fill(top, queries)


def save_bundle(
    folder: Path,
    model: Recommender,
    catalogue: Catalogue,
    info: dict,
    users: list[str] | None = None,
    histories: Sequences | None = None,
) -> Path:
    """``users`` (the model's user rows, as ``UserItemsFold.users``) and ``histories`` (what each
    of them has, as catalogue ids) go together, for a user-items bundle."""
    if (users is None) != (histories is None):
        raise ValueError("a user-items bundle needs both users and their histories")
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / MODEL_DIR)
    catalogue.save(folder)
    if users is not None and histories is not None:
        if len(histories) != len(users):
            raise ValueError(f"{len(histories)} histories for {len(users)} users")
        items = histories.items
        if len(items) and (items.min() < 0 or items.max() >= len(catalogue)):
            raise ValueError(f"histories must hold catalogue ids, 0 to {len(catalogue) - 1}")
        pq.write_table(pa.table({"user_id": pa.array(users, pa.string())}), folder / USERS_FILE)
        histories.save(folder, HISTORIES)
    info = {"family": model.family, "model": model.name, **info}
    (folder / INFO_FILE).write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    return folder


def load_bundle(folder: Path) -> Bundle:
    catalogue = Catalogue.load(folder)
    popularity = Popularity.from_counts(catalogue.train_counts)
    info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    bundle = Bundle(load_recommender(folder / MODEL_DIR), catalogue, popularity, info)
    if (folder / USERS_FILE).exists():
        bundle.users = pq.read_table(folder / USERS_FILE).column("user_id").combine_chunks()
        bundle.histories = Sequences.load(folder, HISTORIES)
    return bundle


def first_keys(folder: Path, n: int) -> list[str]:
    """The first ``n`` catalogue keys of the bundle at ``folder``, its model left unread."""
    return Catalogue.load(folder).keys.slice(0, n).to_pylist()


def first_user(folder: Path) -> str | None:
    """The first user a user-items bundle at ``folder`` knows (None: it carries no users)."""
    path = folder / USERS_FILE
    if not path.exists():
        return None
    return pq.read_table(path, columns=["user_id"]).column("user_id")[0].as_py()


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
