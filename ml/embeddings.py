"""Track embeddings with gensim Word2Vec over playlist sequences ("prod2vec").

Reproducible only with a fixed seed, one worker thread and the same corpus order: callers pass
sequences in a stable order (the warehouse reads ORDER BY first_row_id) and get the same vectors.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import gensim
import numpy as np
from gensim.models import Word2Vec
from gensim.models.callbacks import CallbackAny2Vec

EpochLog = Callable[[str], None]


@dataclass(frozen=True)
class Word2VecParams:
    """gensim Word2Vec hyperparameters, named as gensim names them; the defaults are the
    reference tutorial's."""

    vector_size: int = 48
    window: int = 10
    min_count: int = 3
    epochs: int = 30
    ns_exponent: float = 0.75
    sg: int = 0
    negative: int = 5
    sample: float = 1e-3
    alpha: float = 0.025
    seed: int = 42

    @property
    def name(self) -> str:
        return (
            f"{'sg' if self.sg else 'cbow'}_d{self.vector_size}_w{self.window}_mc{self.min_count}"
            f"_e{self.epochs}_ns{self.ns_exponent:g}"
        )

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Embeddings:
    keys: list[str]
    vectors: np.ndarray  # float32, one row per key
    params: Word2VecParams
    train_seconds: float = 0.0
    words_per_second: float = 0.0
    corpus_words: int = 0
    gensim_version: str = gensim.__version__

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "vectors.npy", self.vectors)
        (folder / "keys.txt").write_text("\n".join(self.keys) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, params: Word2VecParams) -> Embeddings:
        keys = (folder / "keys.txt").read_text(encoding="utf-8").splitlines()
        return cls(keys=keys, vectors=np.load(folder / "vectors.npy"), params=params)


class EmptyVocabularyError(ValueError):
    """Nothing to embed: every track is rarer than min_count."""


class _EpochLogger(CallbackAny2Vec):
    def __init__(self, name: str, epochs: int, log: EpochLog):
        self.name, self.epochs, self.log, self.epoch = name, epochs, log, 0
        self.started = time.perf_counter()

    def on_epoch_end(self, model) -> None:
        self.epoch += 1
        if self.epoch == self.epochs or self.epoch % max(1, self.epochs // 5) == 0:
            seconds = time.perf_counter() - self.started
            self.log(f"{self.name}: epoch {self.epoch}/{self.epochs} ({seconds:.1f} s)")


def corpus_fingerprint(sequences: list[list[str]]) -> str:
    """sha256 of the ordered corpus: same fingerprint, same training input."""
    digest = hashlib.sha256()
    for sequence in sequences:
        digest.update("\x1f".join(sequence).encode("utf-8"))
        digest.update(b"\x1e")
    return digest.hexdigest()[:16]


def train_embeddings(
    sequences: list[list[str]], params: Word2VecParams, log: EpochLog | None = None
) -> Embeddings:
    """Train on Python lists of str (never numpy arrays: gensim hangs on them)."""
    if sequences and not isinstance(sequences[0], list):
        raise TypeError(f"sequences must be lists of str, got {type(sequences[0]).__name__}")
    callbacks = [_EpochLogger(params.name, params.epochs, log)] if log else []
    started = time.perf_counter()
    model = Word2Vec(**params.as_dict(), workers=1)  # every field is a Word2Vec argument
    model.build_vocab(sequences)
    if len(model.wv) == 0:
        raise EmptyVocabularyError(
            f"{params.name}: no track occurs min_count={params.min_count} times in "
            f"{len(sequences):,} training playlists; lower min_count or add data"
        )
    model.train(
        sequences, total_examples=model.corpus_count, epochs=params.epochs, callbacks=callbacks
    )
    seconds = time.perf_counter() - started
    words = model.corpus_total_words * params.epochs
    return Embeddings(
        keys=list(model.wv.index_to_key),
        vectors=np.asarray(model.wv.vectors, dtype=np.float32),
        params=params,
        train_seconds=seconds,
        words_per_second=words / seconds if seconds else 0.0,
        corpus_words=model.corpus_total_words,
    )
