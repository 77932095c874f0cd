"""The gensim side of Word2Vec (imported by ``Word2Vec.fit_corpus_file`` only, so scoring and
serving never load gensim, which the logged pyfunc's requirements leave out)."""

from __future__ import annotations

import time
from pathlib import Path

import gensim
import numpy as np
from gensim.models import Word2Vec as GensimWord2Vec
from gensim.models.callbacks import CallbackAny2Vec

from ml.recommenders.base import CannotFit, Log
from ml.recommenders.word2vec import Word2VecParams


def train_vectors(
    params: Word2VecParams, name: str, corpus: Path, log: Log
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """(item ids of the vocabulary, input vectors, output vectors, training facts)."""
    p = params
    model = GensimWord2Vec(
        vector_size=p.vector_size,
        window=p.window,
        min_count=p.min_count,
        ns_exponent=p.ns_exponent,
        sg=p.sg,
        negative=p.negative,
        sample=p.sample,
        alpha=p.alpha,
        seed=p.seed,
        workers=p.workers,
    )
    started = time.perf_counter()
    model.build_vocab(corpus_file=str(corpus))
    if len(model.wv) == 0:
        raise CannotFit(
            f"{name}: no track occurs min_count={p.min_count} times in the train split; "
            "lower min_count or add data"
        )
    model.train(
        corpus_file=str(corpus),
        total_words=model.corpus_total_words,
        epochs=p.epochs,
        callbacks=[_EpochLog(name, p.epochs, log)],
    )
    seconds = time.perf_counter() - started
    ids = np.array([int(token) for token in model.wv.index_to_key], dtype=np.int64)
    facts = {
        "train_seconds": seconds,
        "words_per_second": model.corpus_total_words * p.epochs / seconds if seconds else 0.0,
        "corpus_words": float(model.corpus_total_words),
        "vocabulary_size": float(len(ids)),
        "gensim_version": gensim.__version__,
    }
    return ids, model.wv.vectors, model.syn1neg, facts


class _EpochLog(CallbackAny2Vec):
    """A line every ~20% of the epochs, with the time left at the current pace."""

    def __init__(self, name: str, epochs: int, log: Log):
        self.name, self.epochs, self.log, self.epoch = name, epochs, log, 0
        self.started = time.perf_counter()

    def on_epoch_end(self, model) -> None:
        self.epoch += 1
        if self.epoch == self.epochs or self.epoch % max(1, self.epochs // 5) == 0:
            seconds = time.perf_counter() - self.started
            left = seconds / self.epoch * (self.epochs - self.epoch)
            self.log(
                f"{self.name}: epoch {self.epoch}/{self.epochs}, {seconds:.1f} s, "
                f"~{left:.0f} s left"
            )
