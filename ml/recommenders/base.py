"""The one interface every recommender family implements, for both use cases.

A query is what a playlist or user has heard so far (item ids, oldest first) and, for families
that embed users, the user's index. ``fit`` learns from the train sequences; ``top_k`` returns
the best ``k`` unheard items per query with scores; ``save``/``load`` round-trip through a
folder (the MLflow bundle). Hyperparameters are a pydantic dataclass per family, so an invalid
value (``k < 1``, a negative weight, ``window=0``) is refused on construction, naming the field.
Fields marked ``scoring`` change only how a fitted model ranks, so one fit serves every scoring
variant (``with_scoring``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field, TypeAdapter

from ml.progress import Log, no_log
from ml.recommenders.topk import top_k_dense, top_k_sparse
from ml.sequences import UNKNOWN, Sequences

if TYPE_CHECKING:
    from ml.datasets.evaluation_split import EvaluationSplit

PARAMS_FILE = "recommender.json"
# Threads scoring query batches at once: evaluation and the serving tables run alone after the
# grid, which would leave a core idle (docs/constants.md).
SCORING_THREADS = min(4, os.cpu_count() or 1)  # each holds a batch
_in_pool = threading.local()
T = TypeVar("T")
R = TypeVar("R")


def ranking_only(default: Any, **constraints: Any) -> Any:
    """A hyperparameter that changes ranking only, not what ``fit`` learns."""
    return Field(default=default, json_schema_extra={"scoring": True}, **constraints)


EpochCallback = Callable[[int, dict[str, float]], None]  # (1-based epoch, metrics)


@dataclass(frozen=True, kw_only=True)
class FitInputs:
    """Everything a family may learn from. Every family reads ``train``; the others are for those
    that use them (the two-tower: interaction times, item features, an evaluation split to stop
    early on and a per-epoch callback) and are ignored by the rest."""

    train: Sequences
    times: np.ndarray | None = None  # epoch seconds of each train item
    item_features: sp.csr_matrix | None = None  # items x features
    validation: EvaluationSplit | None = None
    on_epoch: EpochCallback | None = None


class CannotFit(ValueError):
    """A family that cannot learn anything from this train split; the message says why."""


@dataclass(frozen=True)
class Queries:
    history: Sequences  # heard items per query, oldest first; -1 for items unknown to the model
    users: np.ndarray | None = None  # int64 user index per query (-1: unknown user), optional

    def __len__(self) -> int:
        return len(self.history)

    def slice(self, start: int, stop: int) -> Queries:
        users = None if self.users is None else self.users[start:stop]
        return Queries(self.history.slice(start, stop), users)

    def take(self, rows: np.ndarray) -> Queries:
        users = None if self.users is None else self.users[rows]
        return Queries(self.history.take(rows), users)


@dataclass(frozen=True)
class ItemVectors:
    """Unit vectors of the items a model embeds: ``compact_of[item]`` is the item's row of
    ``unit`` (-1: not embedded)."""

    compact_of: np.ndarray  # (n_items,) int64
    unit: np.ndarray  # (vocabulary, dimensions) float32, rows of norm 1 (or 0)


@dataclass(frozen=True)
class TopK:
    ids: np.ndarray  # (n, k) int32, best first; -1 where the model has nothing more to say
    scores: np.ndarray  # (n, k) float32; -inf where ids == -1

    def __len__(self) -> int:
        return len(self.ids)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "ids.npy", self.ids)
        np.save(folder / "scores.npy", self.scores)

    @classmethod
    def load(cls, folder: Path) -> TopK:
        return cls(np.load(folder / "ids.npy"), np.load(folder / "scores.npy"))

    def head(self, k: int) -> TopK:
        """The first ``k`` of each list (all of it when shorter)."""
        return TopK(self.ids[:, :k], self.scores[:, :k])

    def item_keys(self, n_items: int) -> np.ndarray:
        """row * n_items + item of every listed item, row by row, best first."""
        rows = np.repeat(np.arange(len(self), dtype=np.int64), self.ids.shape[1])
        items = self.ids.reshape(-1).astype(np.int64)
        keep = items != UNKNOWN
        return rows[keep] * n_items + items[keep]

    @classmethod
    def concatenate(cls, parts: list[TopK], k: int) -> TopK:
        if not parts:
            return cls(np.empty((0, k), np.int32), np.empty((0, k), np.float32))
        ids = np.concatenate([p.ids for p in parts])
        return cls(ids, np.concatenate([p.scores for p in parts]))


class Recommender(ABC):
    """Subclasses set ``family`` and ``Params``: a pydantic dataclass with ``name`` (every
    hyperparameter) and ``fit_name`` (only those ``fit`` uses: names the fitted model)."""

    family: ClassVar[str]
    Params: ClassVar[type]
    score_cells_per_batch: ClassVar[int] = 1 << 25  # ~128 MiB of float32 scores at a time

    def __init__(self, params: Any, n_items: int):
        if not isinstance(params, self.Params):
            raise TypeError(f"{self.family}: expected {self.Params.__name__}, got {params!r}")
        self.params = params
        self.n_items = n_items
        # Facts of the last fit worth logging (epochs run, best epoch...): none for most families.
        self.training: dict[str, float] = {}

    @property
    def name(self) -> str:
        return f"{self.family}:{self.params.name}"

    def refit_params(self) -> Any:
        """The params that retrain this model on more data: these, unless the fit chose some
        (a two-tower's epochs kept by early stopping)."""
        return self.params

    @property
    def score_width(self) -> int:
        """Score cells one query can take: every item for a dense scorer; a sparse scorer's
        bound on its stored entries per query (rules or neighbours of the query's tracks)."""
        return self.n_items

    @property
    def batch_size(self) -> int:
        """Queries scored at once, so that a batch's scores stay bounded. At 2.3M tracks a dense
        block allows 16 queries; a sparse family's batch is as large as its entries allow, or
        its per-batch cost (one pass over an items-long accumulator) dominates."""
        return int(np.clip(self.score_cells_per_batch // max(self.score_width, 1), 16, 2048))

    @property
    def excludes_heard(self) -> bool:
        """Whether heard items are left out (every family but the tutorial's setup)."""
        return True

    def item_vectors(self) -> ItemVectors | None:
        """The model's item embeddings, for families that learn some (a reranker's features)."""
        return None

    @property
    def fitted_on_a_sample(self) -> bool:
        """Whether this model is fitted, on a seeded share of its train playlists (not all)."""
        return False

    def fitted_models(self) -> list[Recommender]:
        """This model and those its fit fits (a second stage's components)."""
        return [self]

    def scoring_params(self) -> dict[str, Any]:
        """The params that only change how a fitted model ranks (``with_scoring``'s)."""
        return {name: getattr(self.params, name) for name in scoring_fields(self.Params)}

    @abstractmethod
    def fit(self, train: Sequences, log: Log = no_log) -> None:
        """Learn from the train sequences (item ids < n_items; no unknowns)."""

    def fit_inputs(self, inputs: FitInputs, log: Log = no_log) -> None:
        """Fit from everything available: callers need not know which family uses what."""
        self.fit(inputs.train, log)

    @abstractmethod
    def score(self, queries: Queries) -> np.ndarray | sp.csr_matrix:
        """Scores of every item for a batch of queries: a dense (n, n_items) array, or a sparse
        matrix whose missing entries mean "no evidence" (never recommended)."""

    def top_k(self, queries: Queries, k: int) -> TopK:
        """The ``k`` best items per query that it has not heard, best first."""

        def batch_top_k(batch: Queries) -> TopK:
            scores = self.score(batch)
            heard = batch.history if self.excludes_heard else Sequences.empty(len(batch))
            if sp.issparse(scores):
                return TopK(*top_k_sparse(sp.csr_matrix(scores), k, heard))
            return TopK(*top_k_dense(scores, k, heard))

        return batched(queries, self.batch_size, k, batch_top_k)

    def with_scoring(self, **changes: Any) -> Recommender:
        """A view of this fitted model that ranks with other scoring hyperparameters."""
        fit_fields = set(changes) - scoring_fields(self.Params)
        if fit_fields:
            raise ValueError(f"{self.family}: {sorted(fit_fields)} change what fit learns")
        view = copy.copy(self)
        view.params = dataclasses.replace(self.params, **changes)
        return view

    # Persistence: params as JSON beside the family's own arrays.
    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        document = {
            "family": self.family,
            "n_items": self.n_items,
            "params": TypeAdapter(self.Params).dump_python(self.params, mode="json"),
        }
        (folder / PARAMS_FILE).write_text(json.dumps(document, indent=2), encoding="utf-8")
        self.save_state(folder)

    @abstractmethod
    def save_state(self, folder: Path) -> None:
        """Write what ``fit`` learned."""

    @abstractmethod
    def load_state(self, folder: Path) -> None:
        """Read what ``save_state`` wrote."""


def first_item_vectors(models: list[Recommender]) -> ItemVectors | None:
    """The item vectors of the first of ``models`` that embeds items."""
    return next((v for v in (m.item_vectors() for m in models) if v is not None), None)


def batched(queries: Queries, size: int, k: int, batch_top_k: Callable[[Queries], TopK]) -> TopK:
    """``batch_top_k`` over batches of ``size`` queries, concatenated in order. Batches are
    scored on ``SCORING_THREADS`` threads (scipy and numpy release the GIL in their loops): the
    result does not depend on the thread count."""
    batches = [queries.slice(s, min(s + size, len(queries))) for s in range(0, len(queries), size)]
    return TopK.concatenate(map_concurrently(batch_top_k, batches), k)


def map_concurrently(function: Callable[[T], R], items: list[T]) -> list[R]:
    """``function`` of each of ``items``, in order, on ``SCORING_THREADS`` threads (numpy and
    scipy release the GIL in their loops); in a thread of such a pool, one item after another:
    one pool, not one per level (a hybrid's components score inside a pool thread)."""
    if len(items) < 2 or SCORING_THREADS < 2 or getattr(_in_pool, "scoring", False):
        return [function(item) for item in items]
    with ThreadPoolExecutor(SCORING_THREADS, initializer=_mark_pool_thread) as pool:
        # Every item runs even when one raises (map would cancel those not yet started).
        futures = [pool.submit(function, item) for item in items]
        return [future.result() for future in futures]


def _mark_pool_thread() -> None:
    _in_pool.scoring = True


def started(function: Callable[[], R]) -> Future[R]:
    """``function`` running from now on a thread of its own, beside the caller's work (numpy,
    scipy and gensim release the GIL in their loops); ``result()`` waits for it and raises its
    error. Not a scoring pool's thread: the scoring it calls may use a pool of its own."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(function)
    finally:
        pool.shutdown(wait=False)


def run_concurrently(jobs: list[Callable[[], None]]) -> None:
    """Independent ``jobs`` (a second stage's component fits) on ``SCORING_THREADS`` threads:
    numpy, scipy and gensim release the GIL in their loops, so the fits share the cores. Each
    job writes only its own state, so what they learn does not depend on the thread count."""
    map_concurrently(lambda job: job(), jobs)  # raises a job's error


def refit_components(
    parts: list[Recommender], train: Sequences, log: Log, *also: Callable[[], None]
) -> None:
    """A second stage's ``parts`` fitted again on ``train``, at once and beside ``also``. A part
    fitted already on a seeded share of the playlists keeps that fit: a refit would learn from
    another such share, and at the full Kaggle-shaped file that changed no test figure beyond
    noise while taking half the refit's time (docs/benchmarks.md)."""
    jobs = []
    for part in parts:
        if part.fitted_on_a_sample:
            log(f"{part.name}: keeps its fit (on a seeded share of the train playlists)")
        else:
            jobs.append(partial(part.fit, train, log))
    run_concurrently([*jobs, *also])


def scoring_fields(params_type: type) -> set[str]:
    return {
        name
        for name, info in params_type.__pydantic_fields__.items()
        if (info.json_schema_extra or {}).get("scoring")
    }


def parse_params(params_type: type, values: dict) -> Any:
    """Validated params; pydantic's error names the field and the rule it breaks."""
    return TypeAdapter(params_type).validate_python(values)
