"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"): a linear item-item
model with a closed form. With X the users x items matrix of train (1 where a user had the item),
P = (X^T X + l2 * I)^-1 and B = I - P diag(1 / diag(P)), i.e. B_ij = -P_ij / P_jj off the
diagonal and 0 on it. A query's scores are its history's indicator row times B, so a user the
model never saw is scored from its history like any other.

The inverse is dense: items^2 float64 while fitting. ``max_items`` refuses a catalogue whose
inverse would not fit, naming the size, rather than swapping the machine to death.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import Field
from pydantic.dataclasses import dataclass

from ml.recommenders.base import CannotFit, Log, Queries, Recommender, no_log
from ml.sequences import Sequences


@dataclass(frozen=True)
class EaseParams:
    l2: Annotated[float, Field(gt=0.0)] = 500.0
    max_items: Annotated[int, Field(ge=1)] = 20_000  # a 20k x 20k float64 inverse is 3.2 GB

    @property
    def fit_name(self) -> str:
        return f"l2_{self.l2:g}"

    @property
    def name(self) -> str:
        return self.fit_name


class Ease(Recommender):
    family = "ease"
    Params = EaseParams

    def __init__(self, params: EaseParams, n_items: int):
        super().__init__(params, n_items)
        fits = n_items <= params.max_items  # fit refuses the rest; allocate nothing for them
        self.weights = np.zeros((n_items, n_items) if fits else (0, 0), dtype=np.float32)

    def fit(self, train: Sequences, log: Log = no_log) -> None:
        n = self.n_items
        if n > self.params.max_items:
            gigabytes = n * n * 8 / 1e9
            raise CannotFit(
                f"{self.name}: {n:,} items need a dense {n:,} x {n:,} inverse ({gigabytes:.1f} GB "
                f"of float64); max_items is {self.params.max_items:,}"
            )
        interactions = train.to_csr(n)
        interactions.data[:] = 1.0  # a repeated item counts once
        gram = (interactions.T @ interactions).toarray().astype(np.float64)
        gram[np.diag_indices(n)] += self.params.l2
        inverse = np.linalg.inv(gram)
        weights = -inverse / np.diag(inverse)[None, :]
        weights[np.diag_indices(n)] = 0.0
        self.weights = weights.astype(np.float32)
        log(f"{self.name}: {n:,} x {n:,} item weights from {interactions.nnz:,} interactions")

    def score(self, queries: Queries) -> np.ndarray:
        history = queries.history.known().to_csr(self.n_items)
        history.data[:] = 1.0
        return np.asarray(history @ self.weights, dtype=np.float32)

    def save_state(self, folder: Path) -> None:
        np.save(folder / "weights.npy", self.weights)

    def load_state(self, folder: Path) -> None:
        self.weights = np.load(folder / "weights.npy")
