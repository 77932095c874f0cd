"""Two-tower retrieval in PyTorch: a user tower and an item tower whose dot product is the score.

Towers: the user's id embedded; the item's id embedded, plus optionally the mean of its feature
embeddings (genres, decade) and a per-item bias (a learned popularity term: the dot product with
a constant 1 in the user vector). Training walks
the (user, item) pairs of train in a seeded shuffle and samples ``negatives`` items uniformly per
positive (an accidental positive among them is rare and left in), with one of three losses:

- ``bce``: binary cross-entropy, positive vs each negative (the published setup);
- ``bpr``: -log sigmoid(positive - negative), averaged over the negatives;
- ``softmax``: cross-entropy of the positive among itself and its negatives (sampled softmax).

``weight_decay`` is an L2 penalty on the embeddings a batch uses (sparse updates: a 1M-user
table costs only the rows it touches). With a validation split, NDCG@10 is measured after every
epoch (``on_epoch`` receives it with the loss, e.g. to log to MLflow); training stops after
``patience`` epochs without a better NDCG@10 and keeps the best epoch's weights.
``refit_params()`` are the params that retrain it on more data: as many epochs as were kept.

``recency_prior`` (ranking only: one fit serves every value) adds a time-decayed popularity term
to every score, for catalogues whose demand moves (new releases, fashion seasons).
``popularity_penalty`` (ranking only) subtracts the all-time popularity term: it debiases the
lists from the blockbusters every user would get (the item bias and the prior both favour them),
and with a prior of the same weight what remains of the two is the trend, log(recent / all-time
interactions), which ranks what is gaining ground rather than what was always big.

Scoring is numpy on the saved arrays: serving (and importing this module) needs no torch; the
training loop lives in ``two_tower_training``. A user the model has not seen
(``users == -1``) is scored from its history: the mean of its known items' embeddings stands in
for the user vector (no history: the item biases alone, i.e. learned popularity).

Reproducible: every random draw comes from one seeded generator, ``threads`` is fixed during
``fit`` and deterministic kernels are enforced; the same seed and data give the same weights.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from pydantic.dataclasses import dataclass

from ml.evaluation.metrics import ranking_metrics
from ml.recommenders.base import (
    CannotFit,
    FitInputs,
    Log,
    Queries,
    Recommender,
    no_log,
    ranking_only,
)
from ml.sequences import UNKNOWN, Sequences

STOPPING_METRIC = "ndcg_at_10"
VALIDATION_KS = (10,)


@dataclass(frozen=True)
class TwoTowerParams:
    """Defaults: the published configuration (16 dimensions, 10 negatives, 30 epochs, BCE)."""

    embedding_dim: Annotated[int, Field(ge=1, le=1024)] = 16
    negatives: Annotated[int, Field(ge=1, le=10_000)] = 10
    loss: Literal["bce", "bpr", "softmax"] = "bce"
    epochs: Annotated[int, Field(ge=1, le=1000)] = 30
    learning_rate: Annotated[float, Field(gt=0.0, le=10.0)] = 0.01
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.0
    batch_size: Annotated[int, Field(ge=1, le=1 << 20)] = 1024
    item_bias: bool = False
    # The item tower adds the mean of the item's feature embeddings (genres, decade...) to its id
    # embedding; fit then needs the items x features matrix.
    item_features: bool = False
    init_std: Annotated[float, Field(gt=0.0, le=10.0)] = 0.1
    # Recent interactions count more: one this many days older than the newest is drawn half as
    # often. None: every interaction alike (needs ``times`` in fit otherwise).
    half_life_days: Annotated[float, Field(gt=0.0)] | None = None
    # A recency prior added at ranking: recency_prior * log(1 + the item's train interactions,
    # each weighted 0.5 ** (its age in days / prior_half_life_days)), ages from ``times`` in fit
    # (without times every interaction counts 1: a plain popularity prior).
    prior_half_life_days: Annotated[float, Field(gt=0.0)] = 14.0
    recency_prior: float = ranking_only(0.0, ge=0.0)
    # Subtracted at ranking: popularity_penalty * log(1 + the item's train interactions).
    popularity_penalty: float = ranking_only(0.0, ge=0.0)
    patience: Annotated[int, Field(ge=0)] = 5  # epochs without a better NDCG@10; 0 never stops
    seed: int = 0
    threads: Annotated[int, Field(ge=1, le=64)] = 1

    @property
    def fit_name(self) -> str:
        bias = ("_bias" if self.item_bias else "") + ("_feat" if self.item_features else "")
        recency = f"_hl{self.half_life_days:g}d" if self.half_life_days else ""
        return (
            f"{self.loss}_d{self.embedding_dim}_neg{self.negatives}_e{self.epochs}"
            f"_lr{self.learning_rate:g}_wd{self.weight_decay:g}_b{self.batch_size}{bias}"
            f"{recency}_s{self.seed}"
        )

    @property
    def name(self) -> str:
        name = self.fit_name
        if self.recency_prior:
            name += f"+prior{self.recency_prior:g}_hl{self.prior_half_life_days:g}d"
        if self.popularity_penalty:
            name += f"-pop{self.popularity_penalty:g}"
        return name


class TwoTower(Recommender):
    family = "two_tower"
    Params = TwoTowerParams

    def __init__(self, params: TwoTowerParams, n_items: int):
        super().__init__(params, n_items)
        self.user_vectors = np.zeros((0, params.embedding_dim), dtype=np.float32)
        self.item_vectors = np.zeros((n_items, params.embedding_dim), dtype=np.float32)
        self.item_biases = np.zeros(n_items, dtype=np.float32)
        self.recent_log_counts = np.zeros(n_items, dtype=np.float32)  # the recency prior's term
        self.log_counts = np.zeros(n_items, dtype=np.float32)  # the popularity penalty's term

    def fit(self, train: Sequences, log: Log = no_log) -> None:
        self.fit_inputs(FitInputs(train=train), log)

    def fit_inputs(self, inputs: FitInputs, log: Log = no_log) -> None:
        """Row i of ``inputs.train`` is user i's items, ``inputs.times`` their epoch seconds
        (needed with ``half_life_days``), ``inputs.item_features`` items x features (needed with
        ``item_features=True``). With ``inputs.validation``, stop early on its NDCG@10, telling
        ``inputs.on_epoch`` each epoch's figures."""
        from ml.recommenders.two_tower_training import Trainer  # torch only where it trains

        p, train, times, validation = self.params, inputs.train, inputs.times, inputs.validation
        if len(train.items) == 0 or self.n_items < 2:
            raise CannotFit(f"{self.name}: needs interactions and at least two items")
        self.training = {}
        self.recent_log_counts = self._recent_log_counts(train, times)
        counts = np.bincount(train.items, minlength=self.n_items)
        self.log_counts = np.log1p(counts).astype(np.float32)
        started = time.perf_counter()
        best, best_weights, since_best, epoch = -np.inf, None, 0, 0
        features = self._features(inputs.item_features)
        with Trainer(p, train, self.n_items, self._recency_weights(times), features) as trainer:
            for epoch in range(1, p.epochs + 1):
                metrics = {"train_loss": trainer.epoch()}
                self.user_vectors, self.item_vectors, self.item_biases = trainer.weights()
                if validation is not None:
                    top = self.top_k(validation.queries, max(VALIDATION_KS))
                    found = ranking_metrics(top.ids, validation.labels, self.n_items, VALIDATION_KS)
                    metrics.update((k, v) for k, v in found.items() if k != "queries")
                if inputs.on_epoch is not None:
                    inputs.on_epoch(epoch, metrics)
                log(f"{self.name} epoch {epoch}: {_format(metrics)}")
                if validation is None:
                    continue
                if metrics[STOPPING_METRIC] > best:
                    best, since_best = metrics[STOPPING_METRIC], 0
                    best_weights = (self.user_vectors, self.item_vectors, self.item_biases)
                    self.training["best_epoch"] = float(epoch)
                else:
                    since_best += 1
                    if p.patience and since_best >= p.patience:
                        break
        if best_weights is not None:
            self.user_vectors, self.item_vectors, self.item_biases = best_weights
            self.training[f"best_validation_{STOPPING_METRIC}"] = float(best)
        else:
            self.training["best_epoch"] = float(epoch)
        self.training["epochs_run"] = float(epoch)
        self.training["fit_seconds"] = time.perf_counter() - started

    def _recency_weights(self, times: np.ndarray | None) -> np.ndarray | None:
        if self.params.half_life_days is None:
            return None
        if times is None:
            raise ValueError(f"{self.name}: half_life_days needs the interactions' times in fit")
        age_days = (np.max(times) - np.asarray(times, dtype=np.float64)) / 86_400
        return 0.5 ** (age_days / self.params.half_life_days)

    def _recent_log_counts(self, train: Sequences, times: np.ndarray | None) -> np.ndarray:
        weights = None
        if times is not None:
            age_days = (np.max(times) - np.asarray(times, dtype=np.float64)) / 86_400
            weights = 0.5 ** (age_days / self.params.prior_half_life_days)
        counts = np.bincount(train.items, weights=weights, minlength=self.n_items)
        return np.log1p(counts).astype(np.float32)

    def _features(self, item_features: sp.csr_matrix | None) -> sp.csr_matrix | None:
        if not self.params.item_features:
            return None
        if item_features is None or item_features.shape[0] != self.n_items:
            shape = None if item_features is None else item_features.shape
            raise ValueError(
                f"{self.name}: item_features needs an items x features matrix with "
                f"{self.n_items} rows in fit, got {shape}"
            )
        return sp.csr_matrix(item_features, dtype=np.float32)

    def refit_params(self) -> TwoTowerParams:
        """These params with the epochs early stopping kept (all of them without validation)."""
        kept = int(self.training.get("best_epoch", self.params.epochs))
        return dataclasses.replace(self.params, epochs=kept)

    def query_vectors(self, queries: Queries) -> np.ndarray:
        """The user tower's output per query; the mean of the history's item vectors for a user
        the model has not seen (zeros when nothing in the history is known either)."""
        n = len(queries)
        users = queries.users if queries.users is not None else np.full(n, UNKNOWN)
        if (users >= len(self.user_vectors)).any():
            raise ValueError(
                f"{self.name}: user index {int(users.max())} >= {len(self.user_vectors)} users"
            )
        vectors = np.zeros((n, self.item_vectors.shape[1]), dtype=np.float32)
        known = users >= 0
        vectors[known] = self.user_vectors[users[known]]
        if not known.all():
            history = queries.history.take(np.flatnonzero(~known)).known()
            sums = history.to_csr(self.n_items) @ self.item_vectors
            vectors[~known] = sums / np.maximum(history.lengths, 1)[:, None]
        return vectors

    def score(self, queries: Queries) -> np.ndarray:
        p = self.params
        item_terms = (
            self.item_biases
            + p.recency_prior * self.recent_log_counts
            - p.popularity_penalty * self.log_counts
        )
        return self.query_vectors(queries) @ self.item_vectors.T + item_terms[None, :]

    def save_state(self, folder: Path) -> None:
        np.save(folder / "user_vectors.npy", self.user_vectors)
        np.save(folder / "item_vectors.npy", self.item_vectors)
        np.save(folder / "item_biases.npy", self.item_biases)
        np.save(folder / "recent_log_counts.npy", self.recent_log_counts)
        np.save(folder / "log_counts.npy", self.log_counts)

    def load_state(self, folder: Path) -> None:
        self.user_vectors = np.load(folder / "user_vectors.npy")
        self.item_vectors = np.load(folder / "item_vectors.npy")
        self.item_biases = np.load(folder / "item_biases.npy")
        self.recent_log_counts = np.load(folder / "recent_log_counts.npy")
        self.log_counts = np.load(folder / "log_counts.npy")


def _format(metrics: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())
