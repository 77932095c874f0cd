"""Queries with their relevant items, saved beside a dataset and sampled reproducibly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.recommenders.base import Queries
from ml.sequences import Sequences


@dataclass(frozen=True)
class EvaluationSplit:
    name: str
    queries: Queries
    labels: Sequences  # relevant items per query (-1: an item no model can know)

    def __len__(self) -> int:
        return len(self.labels)

    def sample(self, size: int | None, seed: int = 0) -> EvaluationSplit:
        """A fixed, seeded subset of ``size`` queries (all of them when size is None or larger),
        kept in their original order."""
        if size is None or size >= len(self):
            return self
        return self.take(self.sample_rows(size, seed))

    def sample_rows(self, size: int | None, seed: int = 0) -> np.ndarray:
        """The rows ``sample`` keeps, ascending."""
        if size is None or size >= len(self):
            return np.arange(len(self), dtype=np.int64)
        return np.sort(np.random.default_rng(seed).choice(len(self), size=size, replace=False))

    def take(self, rows: np.ndarray) -> EvaluationSplit:
        return EvaluationSplit(self.name, self.queries.take(rows), self.labels.take(rows))

    def save(self, folder: Path) -> None:
        self.queries.history.save(folder, f"{self.name}.history")
        self.labels.save(folder, f"{self.name}.labels")
        if self.queries.users is not None:
            np.save(folder / f"{self.name}.users.npy", self.queries.users)

    @classmethod
    def load(cls, folder: Path, name: str) -> EvaluationSplit:
        users_path = folder / f"{name}.users.npy"
        users = np.load(users_path) if users_path.exists() else None
        history = Sequences.load(folder, f"{name}.history")
        return cls(name, Queries(history, users), Sequences.load(folder, f"{name}.labels"))
