"""Word2Vec track embeddings ("prod2vec"), the product's core family, with two scorings.

gensim learns an input vector per track and, with negative sampling, an output (context)
vector (``syn1neg``). ``in_in`` ranks by cosine between input vectors, as the reference tutorial
did; ``in_out`` scores candidates by the dot product of the query's input vectors with their
output vectors: for skip-gram that is the logit the model was trained to push up for a track
that follows, for CBOW the logit of the centre given its context. A query is the last
``last_n`` known tracks weighted ``recency_decay**age``.

Training reads a corpus file (one playlist per line, item ids as tokens: names never meet
gensim's whitespace tokenizer), so it scales with ``workers`` threads; results repeat exactly
only with ``workers=1`` and a fixed seed, the default. gensim trains at most 10,000 tokens of a
sentence at once: longer playlists are cut into windows that overlap by ``window`` tracks, so no
pair of neighbouring tracks is lost; the cut is counted.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field
from pydantic.dataclasses import dataclass

from ml.recommenders.base import (
    ItemVectors,
    Log,
    Queries,
    Recommender,
    TopK,
    batched,
    no_log,
    ranking_only,
)
from ml.recommenders.topk import top_k_dense
from ml.sequences import UNKNOWN, Sequences

MAX_SENTENCE = 10_000  # gensim's MAX_WORDS_IN_BATCH: the longest sentence it trains whole


@dataclass(frozen=True)
class Word2VecParams:
    """gensim's names; the defaults are the reference tutorial's configuration."""

    vector_size: Annotated[int, Field(ge=2, le=1024)] = 48
    window: Annotated[int, Field(ge=1, le=100)] = 10
    min_count: Annotated[int, Field(ge=1)] = 3
    epochs: Annotated[int, Field(ge=1, le=500)] = 30
    ns_exponent: Annotated[float, Field(ge=-2.0, le=2.0)] = 0.75
    sg: Annotated[int, Field(ge=0, le=1)] = 0  # 1 skip-gram, 0 CBOW
    negative: Annotated[int, Field(ge=1, le=50)] = 5
    sample: Annotated[float, Field(ge=0.0, lt=1.0)] = 1e-3
    alpha: Annotated[float, Field(gt=0.0, le=1.0)] = 0.025
    seed: int = 42
    workers: Annotated[int, Field(ge=1, le=64)] = 1  # > 1 is faster but not repeatable
    # Fit on a seeded sample of the train playlists: a smaller vocabulary, cheaper to train and
    # to score everywhere the model is used (docs/benchmarks.md: the same champion at full scale).
    train_share: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    scoring: Literal["in_in", "in_out"] = ranking_only("in_in")
    last_n: int = ranking_only(1, ge=1, le=100)
    recency_decay: float = ranking_only(0.7, gt=0.0, le=1.0)
    skip_unknown: bool = ranking_only(True)  # back off past tracks the model does not know
    unknown: Literal["popular", "random"] = ranking_only("popular")  # nothing known: fill or guess
    exclude_heard: bool = ranking_only(True)

    @property
    def fit_name(self) -> str:
        return (
            f"{'sg' if self.sg else 'cbow'}_d{self.vector_size}_w{self.window}_mc{self.min_count}"
            f"_e{self.epochs}_ns{self.ns_exponent:g}_s{self.sample:g}"
            + (f"_t{self.train_share:g}" if self.train_share < 1 else "")
        )

    @property
    def name(self) -> str:
        query = f"last{self.last_n}" + (f"_d{self.recency_decay:g}" if self.last_n > 1 else "")
        flags = ("" if self.skip_unknown else "_strict") + (
            "_random" if self.unknown == "random" else ""
        )
        flags += "" if self.exclude_heard else "_keep_heard"
        return f"{self.fit_name}+{self.scoring}_{query}{flags}"


# The reference tutorial: CBOW with its hyperparameters, the last track only, a random guess when
# that track is unknown, heard tracks not excluded.
TUTORIAL = Word2VecParams(
    scoring="in_in", last_n=1, skip_unknown=False, unknown="random", exclude_heard=False
)


class Word2Vec(Recommender):
    family = "word2vec"
    Params = Word2VecParams

    def __init__(self, params: Word2VecParams, n_items: int):
        super().__init__(params, n_items)
        # Vectors exist only for the vocabulary (tracks seen min_count times): scoring works on
        # that compact table, never on the whole catalogue (most of which it does not know).
        self._set_vocabulary(
            np.empty(0, dtype=np.int64),
            np.empty((0, params.vector_size), dtype=np.float32),
            np.empty((0, params.vector_size), dtype=np.float32),
        )

    def _set_vocabulary(self, item_ids: np.ndarray, inputs: np.ndarray, outputs: np.ndarray):
        self.item_ids = np.asarray(item_ids, dtype=np.int64)
        self.input_vectors = np.asarray(inputs, dtype=np.float32)
        self.output_vectors = np.asarray(outputs, dtype=np.float32)
        self.compact_of = np.full(self.n_items, -1, dtype=np.int64)
        self.compact_of[self.item_ids] = np.arange(len(self.item_ids))
        norms = np.linalg.norm(self.input_vectors, axis=1, keepdims=True)
        self.unit_inputs = self.input_vectors / np.where(norms == 0, 1, norms)

    @property
    def excludes_heard(self) -> bool:
        return self.params.exclude_heard

    @property
    def fitted_on_a_sample(self) -> bool:
        return self.params.train_share < 1 and len(self.item_ids) > 0

    def item_vectors(self) -> ItemVectors:
        return ItemVectors(self.compact_of, self.unit_inputs)

    def fit(self, train: Sequences, log: Log = no_log) -> None:
        if self.params.train_share < 1:
            sample = train.sample(self.params.train_share, self.params.seed)
            log(f"{self.name}: fitting on a seeded {len(sample):,} of {len(train):,} playlists")
            train = sample
        with tempfile.TemporaryDirectory(prefix="word2vec-") as folder:
            corpus = Path(folder) / "corpus.txt"
            windows = write_corpus(train, corpus, self.params.window)
            self.fit_corpus_file(corpus, log)
        self.training["playlists_cut_for_gensim"] = float(windows)

    def fit_corpus_file(self, corpus: Path, log: Log = no_log) -> None:
        """Train on a corpus file written by ``write_corpus`` (item ids as tokens)."""
        from ml.recommenders.word2vec_training import train_vectors  # gensim only where it trains

        ids, inputs, outputs, self.training = train_vectors(self.params, self.name, corpus, log)
        self._set_vocabulary(ids, inputs, outputs)

    def score(self, queries: Queries) -> np.ndarray:
        """Scores over the whole catalogue (-inf outside the vocabulary); ``top_k`` uses the
        compact form directly."""
        compact, scored = self._compact_scores(queries)
        scores = np.full((len(queries), self.n_items), -np.inf, dtype=np.float32)
        scores[np.ix_(scored, self.item_ids)] = compact
        return scores

    def top_k(self, queries: Queries, k: int) -> TopK:
        vocabulary = max(len(self.item_ids), 1)

        def batch_top_k(chunk: Queries) -> TopK:
            heard = chunk.history if self.excludes_heard else Sequences.empty(len(chunk))
            heard_compact = Sequences(self._compact(heard.items), heard.offsets)
            compact, scored = self._compact_scores(chunk)
            ids = np.full((len(chunk), k), UNKNOWN, dtype=np.int32)
            top = np.full((len(chunk), k), -np.inf, dtype=np.float32)
            if len(scored):
                found, top[scored] = top_k_dense(compact, k, heard_compact.take(scored))
                ids[scored] = np.where(found >= 0, self.item_ids[found], UNKNOWN)
            return TopK(ids, top)

        size = int(np.clip(self.score_cells_per_batch // vocabulary, 16, 2048))
        return batched(queries, size, k, batch_top_k)

    def _compact(self, items: np.ndarray) -> np.ndarray:
        """Vocabulary index of each item id, -1 for an item the model does not know."""
        return np.where(items == UNKNOWN, -1, self.compact_of[np.maximum(items, 0)])

    def _compact_scores(self, queries: Queries) -> tuple[np.ndarray, np.ndarray]:
        """Scores over the vocabulary of the queries that get any (rows ascending), and those
        queries' rows: a query with no track the model knows gets none unless ``unknown`` is
        "random" (the popularity fill ranks for it), so its product is not paid for."""
        p = self.params
        history = Sequences(self._compact(queries.history.items), queries.history.offsets)
        if p.skip_unknown:
            history = history.known()
        recent = history.last(p.last_n)
        weights = (p.recency_decay ** recent.age_of_each_item()).astype(np.float32)
        usable = recent.items >= 0
        vectors = self.unit_inputs if p.scoring == "in_in" else self.input_vectors
        query = np.zeros((len(queries), p.vector_size), dtype=np.float32)
        rows = recent.row_of_each_item()[usable]
        np.add.at(query, rows, weights[usable, None] * vectors[recent.items[usable]])
        candidates = self.unit_inputs if p.scoring == "in_in" else self.output_vectors
        nothing_known = np.bincount(rows, minlength=len(queries)) == 0
        if p.unknown != "random":
            scored = np.flatnonzero(~nothing_known)
            return query[scored] @ candidates.T, scored
        scores = query @ candidates.T
        if nothing_known.any():
            # The tutorial's guess, seeded so that it repeats.
            rng = np.random.default_rng([p.seed, len(queries), int(history.offsets[-1])])
            scores[nothing_known] = rng.random(
                (int(nothing_known.sum()), scores.shape[1]), dtype=np.float32
            )
        return scores, np.arange(len(queries))

    def save_state(self, folder: Path) -> None:
        np.save(folder / "item_ids.npy", self.item_ids)
        np.save(folder / "input_vectors.npy", self.input_vectors)
        np.save(folder / "output_vectors.npy", self.output_vectors)

    def load_state(self, folder: Path) -> None:
        self._set_vocabulary(
            np.load(folder / "item_ids.npy"),
            np.load(folder / "input_vectors.npy"),
            np.load(folder / "output_vectors.npy"),
        )


def write_corpus(train: Sequences, path: Path, window: int) -> int:
    """One line per playlist, item ids as tokens; a playlist longer than gensim trains at once is
    cut into windows overlapping by ``window`` tracks. Returns how many playlists were cut."""
    tokens = train.items.astype(str)
    step = MAX_SENTENCE - window
    cut = 0
    with path.open("w", encoding="ascii") as out:
        for start, stop in zip(train.offsets[:-1], train.offsets[1:], strict=True):
            if stop - start > MAX_SENTENCE:
                cut += 1
            for begin in range(start, max(stop - window, start + 1), step):
                out.write(" ".join(tokens[begin : min(begin + MAX_SENTENCE, stop)]))
                out.write("\n")
    return cut


# Scoring variants worth comparing on every fitted model: both scorings, the last track alone and
# recency-weighted windows of the playlist.
QUERY_VARIANTS = [
    {"scoring": scoring, "last_n": last_n, "recency_decay": decay}
    for scoring in ("in_in", "in_out")
    for last_n, decay in ((1, 0.7), (5, 0.7), (10, 0.8))
]
TUTORIAL_VARIANT = {
    "scoring": "in_in",
    "last_n": 1,
    "skip_unknown": False,
    "unknown": "random",
    "exclude_heard": False,
}
# Skip-gram costs about 2 x window times CBOW per word: on the full Kaggle file (9M train rows)
# one such unit alone outlasts the whole pipeline's budget, so they run on smaller data only.
SKIP_GRAM_MAX_TRAIN_ROWS = 2_000_000
# The 50-epoch skip-gram unit costs the most per row and, where the rung screens (from 500,000
# train rows), was not the family's best: it runs on small data only (docs/constants.md).
LONG_SKIP_GRAM_MAX_TRAIN_ROWS = 500_000
# From this size on the grid trains fewer epochs: one pass over so much data does the work of
# several over a small file, and the unit sets the grid's pace (docs/constants.md).
LARGE_TRAIN_ROWS = 5_000_000
TUTORIAL_VARIANTS = [
    TUTORIAL_VARIANT,
    {"scoring": "in_in", "last_n": 1},
    {"scoring": "in_out", "last_n": 1},
    {"scoring": "in_out", "last_n": 5, "recency_decay": 0.7},
]
DEFAULT_GRID = [
    # The reference tutorial's configuration, with its own query strategy among the variants.
    {"params": {}, "variants": TUTORIAL_VARIANTS, "max_train_rows": LARGE_TRAIN_ROWS},
    # On large data, fewer epochs on a quarter of the playlists (docs/benchmarks.md).
    {"params": {"epochs": 5, "train_share": 0.25}, "variants": TUTORIAL_VARIANTS,
     "min_train_rows": LARGE_TRAIN_ROWS},
    # Larger vectors, smaller window, fewer epochs, frequent tracks subsampled harder.
    {
        "params": {"vector_size": 64, "window": 5, "epochs": 15, "ns_exponent": 0.5,
                   "sample": 1e-4},
        "variants": [v for v in QUERY_VARIANTS if v["scoring"] == "in_out"],
        "max_train_rows": LARGE_TRAIN_ROWS,
    },
    # Skip-gram, small window, many epochs, negative ns_exponent (Caselles-Dupré et al. 2018).
    {
        "params": {"sg": 1, "vector_size": 64, "window": 3, "min_count": 1, "epochs": 50,
                   "ns_exponent": -0.5, "sample": 1e-4},
        "variants": QUERY_VARIANTS,
        "max_train_rows": LONG_SKIP_GRAM_MAX_TRAIN_ROWS,
    },
    {
        "params": {"sg": 1, "vector_size": 64, "window": 5, "min_count": 1, "epochs": 30},
        "variants": QUERY_VARIANTS,
        "max_train_rows": SKIP_GRAM_MAX_TRAIN_ROWS,
    },
]  # fmt: skip
