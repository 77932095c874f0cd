"""A second stage: LightGBM's LambdaRank re-orders the candidates its components propose.

Each component (the best fitted model of a family) proposes its ``depth`` best items per query;
``reranker_features`` describes every (query, candidate) pair of their union, and a
gradient-boosted ranker (``objective=lambdarank``, NDCG@10 on a held-out share of the queries for
early stopping) orders them. The ranker learns from labelled queries the components never saw
(validation): ``learn`` trains one ranker per fold on the other folds and ranks each fold with
the ranker that did not see it (out-of-fold lists: the figures selection compares), then trains
the served ranker on every query. A query's pool holds up to components x depth items, so
training keeps every positive and a seeded sample of ``negatives`` negatives per query: memory
grows with the number of queries, not with the catalogue.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from pydantic.dataclasses import dataclass

from ml.datasets.evaluation_split import EvaluationSplit
from ml.recommenders.base import (
    SCORING_THREADS,
    CannotFit,
    ItemVectors,
    Log,
    Queries,
    Recommender,
    TopK,
    first_item_vectors,
    map_concurrently,
    no_log,
    refit_components,
)
from ml.recommenders.reranker_features import (
    Pool,
    TrainStatistics,
    feature_names,
    pool_features,
)
from ml.recommenders.topk import top_k_sparse
from ml.sequences import UNKNOWN, Sequences
from ml.sorted_sets import isin

if TYPE_CHECKING:
    import lightgbm as lgb

BOOSTER_FILE = "ranker.txt"
VECTORS_FILE, VECTOR_ROWS_FILE = "vectors.npy", "vector_rows.npy"
STOPPING_ROUNDS = 30
CUT_BATCH = 2_048  # training-only queries pooled at once


@dataclass(frozen=True)
class RerankerParams:
    components: list[str]  # component names, for people; their models are the state
    depth: Annotated[int, Field(ge=1, le=10_000)] = 100  # candidates each component proposes
    negatives: Annotated[int, Field(ge=1)] = 30  # sampled per training query
    folds: Annotated[int, Field(ge=2, le=20)] = 3
    rounds: Annotated[int, Field(ge=1)] = 500  # at most; early stopping picks fewer
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    leaves: Annotated[int, Field(ge=2)] = 15
    min_queries_in_leaf: Annotated[int, Field(ge=1)] = 50  # LightGBM's min_data_in_leaf
    early_stopping_share: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.15
    # Also learn from queries cut from each labelled query's own history (its first t tracks ->
    # track t+1), the last ``prefixes`` of them: more examples from playlists no component saw.
    prefixes: Annotated[int, Field(ge=0, le=100)] = 10
    max_cut_queries: Annotated[int, Field(ge=0)] = 30_000  # a seeded sample of them beyond
    window: Annotated[int, Field(ge=1, le=50)] = 5  # co-occurrence distance
    keep_per_row: Annotated[int, Field(ge=1)] = 200  # co-occurring tracks kept per track
    seed: int = 0

    @property
    def fit_name(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        families = "+".join(c.split(":")[0] for c in self.components)
        return f"lambdarank_{families}_d{self.depth}"


class Reranker(Recommender):
    family = "reranker"
    Params = RerankerParams

    def __init__(self, params: RerankerParams, n_items: int):
        super().__init__(params, n_items)
        self.parts: list[Recommender] = []
        self.statistics: TrainStatistics | None = None
        self.booster: lgb.Booster | None = None
        self.artists = np.full(n_items, -1, dtype=np.int32)  # artist code per item, -1 unknown
        self.vectors: ItemVectors | None = None  # for the cosine features

    @classmethod
    def of(
        cls,
        parts: list[Recommender],
        artists: np.ndarray,
        vectors: ItemVectors | None = None,
        **params,
    ) -> Reranker:
        """A reranker pooling ``parts``' lists; ``vectors`` (else a part's own) give the cosine
        features, whether or not the model they come from proposes candidates."""
        reranker = cls(RerankerParams([p.name for p in parts], **params), parts[0].n_items)
        reranker.parts = parts
        reranker.artists = np.asarray(artists, dtype=np.int32)
        reranker.vectors = vectors if vectors is not None else first_item_vectors(parts)
        return reranker

    @property
    def feature_names(self) -> list[str]:
        components = [f"{p.family}" for p in self.parts]
        return feature_names(components, self.vectors is not None)

    def fitted_models(self) -> list[Recommender]:
        return [self, *self.parts]

    def fit(self, train: Sequences, log: Log = no_log) -> None:
        """The components and the train counts the features read; the ranker itself learns
        from labelled queries (``learn``)."""
        refit_components(self.parts, train, log, partial(self.fit_statistics, train, log))

    def fit_statistics(self, train: Sequences, log: Log = no_log) -> None:
        p, started = self.params, time.perf_counter()
        self.statistics = TrainStatistics.of(
            train, self.n_items, self.artists, p.window, p.keep_per_row
        )
        pairs = self.statistics.transitions.nnz + self.statistics.cooccurrence.nnz
        log(
            f"{self.name}: train counts, {pairs:,} pairs (next track, within {p.window} positions) "
            f"in {time.perf_counter() - started:.0f} s"
        )

    def component_lists(self, queries: Queries) -> list[TopK]:
        return [part.top_k(queries, self.params.depth) for part in self.parts]

    def learn(self, lists: list[TopK], validation: EvaluationSplit, log: Log = no_log) -> TopK:
        """Train the ranker on ``validation`` (and queries cut from its histories) from its
        components' ``lists`` for the validation queries (at least ``depth`` long); return
        out-of-fold lists, each validation query ranked by a ranker that saw neither it nor
        anything cut from its playlist, ``depth`` long."""
        p = self.params
        lists = [t.head(p.depth) for t in lists]
        pool, features = pool_features(lists, validation.queries, self.statistics, self.vectors)
        labels = pool.labelled(validation.labels, self.n_items)
        cut, source_row = prefix_queries(validation, p.prefixes)
        if len(cut) > p.max_cut_queries:
            rng = np.random.default_rng([p.seed, p.folds + 1])
            keep = np.sort(rng.choice(len(cut), p.max_cut_queries, replace=False))
            cut, source_row = cut.take(keep), source_row[keep]
        if len(cut):
            log(f"{self.name}: ranking {len(cut):,} queries cut from validation histories")
            cut_pool, cut_features, cut_labels = self._sampled_pool(cut)
            pool = Pool(
                np.concatenate([pool.rows, cut_pool.rows + len(validation)]),
                np.concatenate([pool.items, cut_pool.items]),
                len(validation) + len(cut),
            )
            features = np.concatenate([features, cut_features])
            labels = np.concatenate([labels, cut_labels])
        playlist = np.concatenate([np.arange(len(validation)), source_row])
        positives = np.bincount(pool.rows, weights=labels, minlength=pool.n_queries) > 0
        if positives[: len(validation)].sum() < 2 * p.folds:
            raise CannotFit(
                f"{self.name}: {int(positives[: len(validation)].sum())} validation queries have "
                "their label among "
                f"the candidates; {2 * p.folds} at least are needed to learn in {p.folds} folds"
            )
        fold_of_query = folds_of(len(validation), p.folds, p.seed)[playlist]
        evaluated = np.flatnonzero(pool.rows < len(validation))
        predictions = np.zeros(len(evaluated), dtype=np.float64)
        for fold in range(p.folds):
            training = positives & (fold_of_query != fold)
            booster = self._train(pool, features, labels, training, fold)
            held_out = fold_of_query[pool.rows[evaluated]] == fold
            # The caller's thread, not a scoring pool's: LightGBM's own threads (each row's
            # prediction is the same on any number).
            predictions[held_out] = booster.predict(
                features[evaluated[held_out]], num_threads=SCORING_THREADS
            )
            kept = booster.best_iteration or booster.current_iteration()
            log(f"{self.name}: fold {fold + 1}/{p.folds} kept {kept} rounds")
        self.booster = self._train(pool, features, labels, positives, p.folds)
        self.training = {
            "ranker_rounds": float(self.booster.best_iteration or self.booster.current_iteration()),
            "ranker_training_queries": float(positives.sum()),  # cut ones included
            "ranker_pool_per_query": float(len(labels) / pool.n_queries),
            "ranker_label_in_pool_share": float(positives[: len(validation)].mean()),
        }
        mine = Pool(pool.rows[evaluated], pool.items[evaluated], len(validation))
        return ranked_pool(mine, predictions, validation.queries.history, self.n_items, p.depth)

    def _sampled_pool(self, split: EvaluationSplit) -> tuple[Pool, np.ndarray, np.ndarray]:
        """Pool, features and labels of queries that only train: built a batch at a time and
        kept only where the label is a candidate, each with its positives and up to
        ``negatives`` sampled negatives, so memory holds the sample, not every pool."""
        p = self.params
        rng = np.random.default_rng([p.seed, p.folds + 2])
        rows, items, features, labels = [], [], [], []
        starts = range(0, len(split), CUT_BATCH)
        # SCORING_THREADS batches pooled at once, then sampled in order: the draws, and so the
        # sample, do not depend on the thread count.
        for group in (
            starts[i : i + SCORING_THREADS] for i in range(0, len(starts), SCORING_THREADS)
        ):
            for start, (pool, x, y) in zip(
                group,
                map_concurrently(partial(self._labelled_pool, split), list(group)),
                strict=True,
            ):
                has_label = np.bincount(pool.rows, weights=y, minlength=pool.n_queries) > 0
                keep = sampled_entries(pool.rows, y, p.negatives, rng) & has_label[pool.rows]
                rows.append(pool.rows[keep] + start)
                items.append(pool.items[keep])
                features.append(x[keep])
                labels.append(y[keep])
        pool = Pool(np.concatenate(rows), np.concatenate(items), len(split))
        return pool, np.concatenate(features), np.concatenate(labels)

    def _labelled_pool(
        self, split: EvaluationSplit, start: int
    ) -> tuple[Pool, np.ndarray, np.ndarray]:
        """Pool, features and labels of ``split``'s batch of queries from ``start``."""
        batch = split.take(np.arange(start, min(start + CUT_BATCH, len(split))))
        lists = self.component_lists(batch.queries)
        pool, x = pool_features(lists, batch.queries, self.statistics, self.vectors)
        return pool, x, pool.labelled(batch.labels, self.n_items)

    def _train(
        self,
        pool: Pool,
        features: np.ndarray,
        labels: np.ndarray,
        queries: np.ndarray,
        stream: int,
    ) -> lgb.Booster:
        """A ranker on the pools of ``queries`` (bool per query), early-stopped on a share of
        them; each query keeps its positives and up to ``negatives`` sampled negatives. Draws
        from random stream ``stream`` of the seed: one per ranker, so that no ranker's draws
        depend on the queries another learned from."""
        # Imported where used: at the top, it and scikit-learn (which it imports) would load
        # in every process that loads the definitions, the UI's and each run's.
        import lightgbm as lgb

        p = self.params
        rng = np.random.default_rng([p.seed, stream])
        chosen = np.flatnonzero(queries)
        if len(chosen) < 2:
            raise CannotFit(
                f"{self.name}: {len(chosen)} training queries in a fold have their label among "
                "the candidates; a ranker and its early stopping need two at least"
            )
        stopping_queries = min(max(1, round(p.early_stopping_share * len(chosen))), len(chosen) - 1)
        stopping = rng.permutation(len(chosen)) < stopping_queries
        kept = sampled_entries(pool.rows, labels, p.negatives, rng) & queries[pool.rows]
        sets = []
        for part in (chosen[~stopping], chosen[stopping]):
            entries = np.flatnonzero(kept & isin(pool.rows, part))
            groups = np.bincount(pool.rows[entries], minlength=pool.n_queries)
            sets.append((features[entries], labels[entries], groups[groups > 0]))
        (x, y, group), (x_stop, y_stop, group_stop) = sets
        train_set = lgb.Dataset(x, y, group=group, feature_name=self.feature_names)
        stop_set = lgb.Dataset(x_stop, y_stop, group=group_stop, reference=train_set)
        return lgb.train(
            {
                "objective": "lambdarank",
                "metric": "ndcg",
                "eval_at": [10],
                "learning_rate": p.learning_rate,
                "num_leaves": p.leaves,
                "min_data_in_leaf": p.min_queries_in_leaf,
                "seed": p.seed,
                "deterministic": True,
                "num_threads": SCORING_THREADS,
                "verbose": -1,
            },
            train_set,
            num_boost_round=p.rounds,
            valid_sets=[stop_set],
            callbacks=[lgb.early_stopping(STOPPING_ROUNDS, verbose=False)],
        )

    @property
    def score_width(self) -> int:
        return self.params.depth * len(self.parts)

    def score(self, queries: Queries) -> sp.csr_matrix:
        if self.booster is None:
            raise RuntimeError(f"{self.name}: the ranker has not learned (call learn first)")
        lists = self.component_lists(queries)
        pool, features = pool_features(lists, queries, self.statistics, self.vectors)
        return pool_scores(pool, self.booster.predict(features, num_threads=1), self.n_items)

    def importances(self) -> dict[str, float]:
        """Total gain of each feature in the served ranker."""
        gains = self.booster.feature_importance(importance_type="gain")
        return dict(zip(self.booster.feature_name(), gains.astype(float), strict=True))

    def save_state(self, folder: Path) -> None:
        for i, part in enumerate(self.parts):
            part.save(folder / f"component_{i}")
        s = self.statistics
        np.save(folder / "counts.npy", s.counts)
        np.save(folder / "artists.npy", s.artists)
        sp.save_npz(folder / "transitions.npz", s.transitions, compressed=False)
        sp.save_npz(folder / "cooccurrence.npz", s.cooccurrence, compressed=False)
        (folder / BOOSTER_FILE).write_text(self.booster.model_to_string(), encoding="utf-8")
        if self.vectors is not None:
            np.save(folder / VECTOR_ROWS_FILE, self.vectors.compact_of)
            np.save(folder / VECTORS_FILE, self.vectors.unit)

    def load_state(self, folder: Path) -> None:
        import lightgbm as lgb

        from ml.recommenders.families import load_recommender  # the registry imports this module

        n = len(self.params.components)
        self.parts = [load_recommender(folder / f"component_{i}") for i in range(n)]
        self.statistics = TrainStatistics(
            counts=np.load(folder / "counts.npy"),
            transitions=sp.csr_matrix(sp.load_npz(folder / "transitions.npz")),
            cooccurrence=sp.csr_matrix(sp.load_npz(folder / "cooccurrence.npz")),
            artists=np.load(folder / "artists.npy"),
        )
        self.artists = self.statistics.artists
        self.booster = lgb.Booster(model_str=(folder / BOOSTER_FILE).read_text(encoding="utf-8"))
        self.vectors = (
            ItemVectors(np.load(folder / VECTOR_ROWS_FILE), np.load(folder / VECTORS_FILE))
            if (folder / VECTORS_FILE).exists()
            else first_item_vectors(self.parts)  # saved before the vectors had a file of their own
        )


def prefix_queries(split: EvaluationSplit, most: int) -> tuple[EvaluationSplit, np.ndarray]:
    """Queries cut from each query's history: its first t tracks, labelled with track t + 1,
    for the last ``most`` positions t >= 1 whose track is known; with the row each came from."""
    history = split.queries.history
    first = np.maximum(1, history.lengths - most)  # t runs over first .. L - 1 per query
    counts = np.maximum(history.lengths - first, 0)
    row = np.repeat(np.arange(len(split), dtype=np.int64), counts)
    cut = np.repeat(first, counts) + _position_in_group(counts)
    labels = history.items[history.offsets[row] + cut]
    known = labels != UNKNOWN
    row, cut, labels = row[known], cut[known], labels[known]
    index = np.repeat(history.offsets[row], cut) + _position_in_group(cut)
    queries = Queries(Sequences.from_lengths(history.items[index], cut))
    label_lists = Sequences.from_lengths(labels, np.ones(len(labels), dtype=np.int64))
    return EvaluationSplit(f"{split.name}_prefixes", queries, label_lists), row


def folds_of(n: int, folds: int, seed: int) -> np.ndarray:
    """The fold of each of ``n`` labelled queries: a seeded shuffle dealt round-robin."""
    return np.random.default_rng(seed).permutation(n) % folds


def _position_in_group(sizes: np.ndarray) -> np.ndarray:
    """0, 1, ..., size - 1 for each group, back to back."""
    return np.arange(sizes.sum(), dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)


def sampled_entries(
    rows: np.ndarray, labels: np.ndarray, negatives: int, rng: np.random.Generator
) -> np.ndarray:
    """Every positive, and per query up to ``negatives`` of its negatives drawn at random."""
    draw = rng.random(len(rows))
    draw[labels > 0] = -1.0  # positives first
    order = np.lexsort((draw, rows))
    starts = np.searchsorted(rows[order], rows[order], side="left")
    position = np.arange(len(rows)) - starts
    positives = np.bincount(rows, weights=labels, minlength=int(rows.max(initial=-1)) + 1)
    keep = np.zeros(len(rows), dtype=bool)
    keep[order] = position < positives[rows[order]] + negatives
    return keep


def pool_scores(pool: Pool, predictions: np.ndarray, n_items: int) -> sp.csr_matrix:
    """queries x items holding the ranker's predictions, shifted positive (stored entries are
    the candidates; their order is the predictions')."""
    values = predictions - predictions.min(initial=0.0) + 1.0
    return sp.csr_matrix(
        (values.astype(np.float32), (pool.rows, pool.items)), shape=(pool.n_queries, n_items)
    )


def ranked_pool(
    pool: Pool, predictions: np.ndarray, history: Sequences, n_items: int, k: int
) -> TopK:
    return TopK(*top_k_sparse(pool_scores(pool, predictions, n_items), k, history))
