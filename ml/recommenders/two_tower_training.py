"""The two-tower training loop in PyTorch (imported by ``TwoTower.fit`` only, so scoring and
serving never load torch)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional

from ml.recommenders.two_tower import TwoTowerParams
from ml.sequences import Sequences


class _Towers(nn.Module):
    def __init__(
        self,
        n_users: int,
        n_items: int,
        params: TwoTowerParams,
        generator: torch.Generator,
        features: torch.Tensor | None,
    ):
        super().__init__()
        dim = params.embedding_dim
        self.users = nn.Embedding(n_users, dim, sparse=True)
        self.items = nn.Embedding(n_items, dim, sparse=True)
        self.bias = nn.Embedding(n_items, 1, sparse=True)
        for table in (self.users, self.items):
            nn.init.normal_(table.weight, std=params.init_std, generator=generator)
        nn.init.zeros_(self.bias.weight)
        self.bias.weight.requires_grad_(params.item_bias)
        # items x features, each row averaging its features; their embeddings, dense
        self.features = features
        width = 0 if features is None else features.shape[1]
        self.feature_vectors = nn.Parameter(torch.empty(width, dim))
        nn.init.normal_(self.feature_vectors, std=params.init_std, generator=generator)

    def item_tower(self, items: torch.Tensor) -> torch.Tensor:
        vectors = self.items(items)
        if self.features is not None:
            vectors = vectors + self.features[items] @ self.feature_vectors
        return vectors

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Scores (batch, columns) of each user against its row of items, and the embeddings
        used (for the L2 penalty)."""
        user_vectors = self.users(users)
        item_vectors = self.item_tower(items)
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
        item_features: sp.csr_matrix | None = None,
    ):
        """``weights``: how often each (user, item) pair is drawn relative to the others (None:
        every pair once per epoch, in a shuffled order). ``item_features``: items x features."""
        self.params = params
        self.cumulative = None if weights is None else torch.from_numpy(np.cumsum(weights))
        self.n_items = n_items
        self.users = torch.from_numpy(train.row_of_each_item())
        self.items = torch.from_numpy(train.items.astype(np.int64))
        self.generator = torch.Generator().manual_seed(params.seed)
        features = None
        if item_features is not None:
            counts = np.maximum(np.asarray(item_features.sum(axis=1)), 1.0)
            features = torch.from_numpy(np.asarray(item_features.toarray() / counts, np.float32))
        self.towers = _Towers(len(train), n_items, params, self.generator, features)
        towers = self.towers
        embeddings = [t.weight for t in (towers.users, towers.items, towers.bias)]
        self.optimizers = [
            torch.optim.SparseAdam([t for t in embeddings if t.requires_grad], params.learning_rate)
        ]
        if features is not None:  # a dense table: the ordinary Adam
            self.optimizers.append(torch.optim.Adam([towers.feature_vectors], params.learning_rate))
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
            for optimizer in self.optimizers:
                optimizer.zero_grad()
            loss.backward()
            for optimizer in self.optimizers:
                optimizer.step()
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
        with torch.no_grad():
            items = towers.item_tower(torch.arange(self.n_items))
        return (
            towers.users.weight.detach().numpy().copy(),
            items.numpy().copy(),
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
