"""Sequential rules: track b follows track a within ``max_distance`` positions of a train
playlist, weighted 1/distance; a query sums the rules of its last ``last_n`` tracks, the i-th
most recent weighted ``recency_decay**i``.

``SequentialRules.baseline()`` is the plain last-track rule the platform has always reported
beside its models (window 10, last track only, an unknown last track gets popularity): the bar
every candidate must clear.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from pydantic.dataclasses import dataclass

from ml.recommenders.base import Log, Queries, Recommender, no_log, ranking_only
from ml.recommenders.sparse import (
    keep_top_per_row,
    nearby_pairs,
    product,
    recency_weighted_queries,
    save_matrix,
)
from ml.sequences import Sequences


@dataclass(frozen=True)
class SequentialRulesParams:
    max_distance: Annotated[int, Field(ge=1, le=100)] = 10
    keep_per_item: Annotated[int, Field(ge=1)] = 500  # rules kept per source track (memory)
    last_n: int = ranking_only(1, ge=1, le=100)
    recency_decay: float = ranking_only(0.7, gt=0.0, le=1.0)
    skip_unknown: bool = ranking_only(True)  # False: an unknown last track is not backed off

    @property
    def fit_name(self) -> str:
        return f"w{self.max_distance}_keep{self.keep_per_item}"

    @property
    def name(self) -> str:
        base = f"w{self.max_distance}_last{self.last_n}"
        if self.last_n > 1:
            base += f"_d{self.recency_decay:g}"
        return base if self.skip_unknown else base + "_strict"


class SequentialRules(Recommender):
    family = "sequential_rules"
    Params = SequentialRulesParams

    def __init__(self, params: SequentialRulesParams, n_items: int):
        super().__init__(params, n_items)
        self.rules = sp.csr_matrix((n_items, n_items), dtype=np.float32)

    @classmethod
    def baseline(cls, n_items: int) -> SequentialRules:
        return cls(SequentialRulesParams(max_distance=10, last_n=1, skip_unknown=False), n_items)

    def fit(self, train: Sequences, log: Log = no_log) -> None:
        # Each block of source tracks pruned where it is built: memory stays at about a block.
        blocks = nearby_pairs(
            train,
            self.n_items,
            self.params.max_distance,
            lambda distance: 1.0 / distance,
            lambda _, block: keep_top_per_row(block, self.params.keep_per_item),
        )
        self.rules = sp.vstack(blocks, format="csr", dtype=np.float32)
        log(f"{self.name}: {self.rules.nnz:,} rules over {self.n_items:,} tracks")

    @property
    def score_width(self) -> int:
        return self.params.last_n * self.params.keep_per_item

    def score(self, queries: Queries) -> sp.csr_matrix:
        history = queries.history
        if self.params.skip_unknown:
            history = history.known()
        weights = recency_weighted_queries(
            history, self.n_items, self.params.last_n, self.params.recency_decay
        )
        return product(weights, self.rules)

    def save_state(self, folder: Path) -> None:
        save_matrix(folder / "rules.npz", self.rules)

    def load_state(self, folder: Path) -> None:
        self.rules = sp.load_npz(folder / "rules.npz").tocsr()


# Rules within 20 positions were stopped at successive halving's rung in every run that screened
# them (10% of the Kaggle-shaped file to the full MPD); at full Kaggle scale the rung and the
# screens cost about what stopping them saved, so over this many train rows it does not run.
WIDE_WINDOW_MAX_TRAIN_ROWS = 5_000_000
DEFAULT_GRID = [
    {
        "params": {"max_distance": distance},
        "variants": [
            {"last_n": last_n, "recency_decay": decay}
            for last_n in (2, 3, 5, 10)
            for decay in (0.5, 0.8)
        ]
        # The last-track baseline's own rule: what is served when nothing else is at least as
        # good as both baselines.
        + ([{"last_n": 1, "skip_unknown": False}] if distance == 10 else []),
        **({"max_train_rows": WIDE_WINDOW_MAX_TRAIN_ROWS} if distance == 20 else {}),
    }
    for distance in (10, 20)
]
