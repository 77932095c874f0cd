"""The two-tower training loop in PyTorch (imported by ``TwoTower.fit`` only, so scoring and
serving never load torch)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from ml.recommenders.two_tower import TwoTowerParams
from ml.sequences import Sequences


class _Towers(nn.Module):
    def __init__(
        self, n_users: int, n_items: int, params: TwoTowerParams, generator: torch.Generator
    ):
        super().__init__()
        self.users = nn.Embedding(n_users, params.embedding_dim, sparse=True)
        self.items = nn.Embedding(n_items, params.embedding_dim, sparse=True)
        self.bias = nn.Embedding(n_items, 1, sparse=True)
        for table in (self.users, self.items):
            nn.init.normal_(table.weight, std=params.init_std, generator=generator)
        nn.init.zeros_(self.bias.weight)
        self.bias.weight.requires_grad_(params.item_bias)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Scores (batch, columns) of each user against its row of items, and the embeddings
        used (for the L2 penalty)."""
        user_vectors = self.users(users)
        item_vectors = self.items(items)
        scores = torch.einsum("bd,bcd->bc", user_vectors, item_vectors)
        return scores + self.bias(items).squeeze(-1), user_vectors, item_vectors


class Trainer:
    """One seeded generator draws the initial weights, the shuffle and the negatives; inside
    ``with`` the thread count is fixed and kernels are deterministic, so a seed repeats exactly."""

    def __init__(
        self,
        params: TwoTowerParams,
        train: Sequences,
        n_items: int,
        weights: np.ndarray | None = None,
    ):
        """``weights``: how often each (user, item) pair is drawn relative to the others (None:
        every pair once per epoch, in a shuffled order)."""
        self.params = params
        self.cumulative = None if weights is None else torch.from_numpy(np.cumsum(weights))
        self.n_items = n_items
        self.users = torch.from_numpy(train.row_of_each_item())
        self.items = torch.from_numpy(train.items.astype(np.int64))
        self.generator = torch.Generator().manual_seed(params.seed)
        self.towers = _Towers(len(train), n_items, params, self.generator)
        trained = [t for t in self.towers.parameters() if t.requires_grad]
        self.optimizer = torch.optim.SparseAdam(trained, lr=params.learning_rate)
        self._previous: tuple[int, bool] | None = None

    def __enter__(self) -> Trainer:
        self._previous = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
        torch.set_num_threads(self.params.threads)
        torch.use_deterministic_algorithms(True)
        return self

    def __exit__(self, *_) -> None:
        assert self._previous is not None
        torch.set_num_threads(self._previous[0])
        torch.use_deterministic_algorithms(self._previous[1])

    def epoch(self) -> float:
        """One pass over the shuffled (user, item) pairs; the mean batch loss."""
        p = self.params
        order = self._draw()
        total, batches = 0.0, 0
        for start in range(0, len(order), p.batch_size):
            rows = order[start : start + p.batch_size]
            negatives = torch.randint(
                self.n_items, (len(rows), p.negatives), generator=self.generator
            )
            columns = torch.cat([self.items[rows, None], negatives], dim=1)  # positive first
            scores, user_vectors, item_vectors = self.towers(self.users[rows], columns)
            loss = _loss(p.loss, scores)
            if p.weight_decay:
                penalty = user_vectors.pow(2).sum() + item_vectors.pow(2).sum()
                loss = loss + p.weight_decay * penalty / len(rows)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total += loss.item()
            batches += 1
        return total / batches

    def _draw(self) -> torch.Tensor:
        """An epoch's pairs: a permutation, or as many draws with replacement in proportion to
        the weights (by inverse CDF: no category limit, unlike torch.multinomial)."""
        n = len(self.items)
        if self.cumulative is None:
            return torch.randperm(n, generator=self.generator)
        targets = torch.rand(n, generator=self.generator, dtype=torch.float64)
        found = torch.searchsorted(self.cumulative, targets * self.cumulative[-1], right=True)
        return found.clamp_(max=n - 1)

    def weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Copies of (user vectors, item vectors, item biases) as they are now."""
        towers = self.towers
        return (
            towers.users.weight.detach().numpy().copy(),
            towers.items.weight.detach().numpy().copy(),
            towers.bias.weight.detach().numpy()[:, 0].copy(),
        )


def _loss(kind: str, scores: torch.Tensor) -> torch.Tensor:
    """Mean loss of a batch whose column 0 holds the positives' scores."""
    positive, negative = scores[:, 0], scores[:, 1:]
    if kind == "bce":
        return -(functional.logsigmoid(positive) + functional.logsigmoid(-negative).sum(1)).mean()
    if kind == "bpr":
        return -functional.logsigmoid(positive[:, None] - negative).mean()
    targets = torch.zeros(len(scores), dtype=torch.long)
    return functional.cross_entropy(scores, targets)
