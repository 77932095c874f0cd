"""The hyperparameter grid: one process per candidate, results collected in grid order.

gensim runs with one worker thread per model (reproducibility), so candidates are trained in
parallel processes instead. Progress lines from the workers come back through a queue.
"""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

from ml.embeddings import EmptyVocabularyError, Word2VecParams, train_embeddings

TUTORIAL_PARAMS = Word2VecParams(
    min_count=3, epochs=30, vector_size=48, window=10, ns_exponent=0.75
)


@dataclass(frozen=True)
class TrainedCandidate:
    name: str
    params: Word2VecParams
    folder: str
    train_seconds: float
    words_per_second: float
    vocabulary_size: int
    corpus_words: int
    gensim_version: str


def with_tutorial(grid: list[Word2VecParams]) -> list[Word2VecParams]:
    """The reference configuration is always a candidate, so its result stays reproducible."""
    names = [p.name for p in grid]
    if len(set(names)) != len(names):
        raise ValueError(f"grid has duplicate candidates: {names}")
    tutorial = replace(TUTORIAL_PARAMS, seed=grid[0].seed) if grid else TUTORIAL_PARAMS
    return grid if tutorial in grid else [tutorial, *grid]


def _train_one(
    sequences: list[list[str]], params: Word2VecParams, folder: str, progress
) -> TrainedCandidate | None:
    try:
        embeddings = train_embeddings(sequences, params, log=progress.put)
    except EmptyVocabularyError as e:
        progress.put(f"skipped {e}")
        return None
    embeddings.save(Path(folder))
    return TrainedCandidate(
        name=params.name,
        params=params,
        folder=folder,
        train_seconds=embeddings.train_seconds,
        words_per_second=embeddings.words_per_second,
        vocabulary_size=len(embeddings.keys),
        corpus_words=embeddings.corpus_words,
        gensim_version=embeddings.gensim_version,
    )


def train_grid(
    sequences: list[list[str]],
    grid: list[Word2VecParams],
    out_dir: Path,
    max_parallel: int = 2,
    log: Callable[[str], None] = print,
) -> list[TrainedCandidate]:
    """Trains every candidate; one whose vocabulary is empty is skipped and logged."""
    context = multiprocessing.get_context("spawn")  # no forked DuckDB/MLflow state in workers
    with (
        context.Manager() as manager,
        ProcessPoolExecutor(max_parallel, mp_context=context) as pool,
    ):
        progress = manager.Queue()
        futures = [
            pool.submit(_train_one, sequences, p, str(out_dir / p.name), progress) for p in grid
        ]
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.5)
            _drain(progress, log)
        _drain(progress, log)
        trained = [result for f in futures if (result := f.result()) is not None]
    if not trained:
        raise EmptyVocabularyError(
            f"no grid candidate has any track to embed ({len(sequences):,} training playlists): "
            "lower min_count or add data"
        )
    return trained


def _drain(progress, log: Callable[[str], None]) -> None:
    while True:
        try:
            log(progress.get_nowait())
        except queue.Empty:
            return
