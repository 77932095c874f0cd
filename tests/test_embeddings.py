"""Training is reproducible and the grid trains candidates in parallel processes."""

import numpy as np
import pytest

from ml.embeddings import Embeddings, Word2VecParams, corpus_fingerprint, train_embeddings
from ml.tuning import TUTORIAL_PARAMS, train_grid, with_tutorial

CORPUS = [[f"t{(i * 7 + j) % 40}" for j in range(12)] for i in range(200)]
SMALL = Word2VecParams(vector_size=8, window=3, min_count=1, epochs=3)


def test_same_seed_same_vectors_and_metadata():
    first = train_embeddings(CORPUS, SMALL)
    second = train_embeddings(CORPUS, SMALL)
    assert first.keys == second.keys and len(first.keys) == 40
    assert np.array_equal(first.vectors, second.vectors)
    other = train_embeddings(CORPUS, Word2VecParams(**{**SMALL.as_dict(), "seed": 7}))
    assert not np.array_equal(first.vectors, other.vectors)
    assert first.words_per_second > 0 and first.corpus_words == 200 * 12


def test_numpy_sequences_are_refused_not_hung():
    with pytest.raises(TypeError, match="lists of str"):
        train_embeddings([np.array(["a", "b"])], SMALL)


def test_fingerprint_depends_on_order():
    assert corpus_fingerprint(CORPUS) == corpus_fingerprint([list(s) for s in CORPUS])
    assert corpus_fingerprint(CORPUS) != corpus_fingerprint(CORPUS[::-1])


def test_tutorial_configuration_is_always_in_the_grid():
    grid = with_tutorial([SMALL])
    assert grid[0] == TUTORIAL_PARAMS and grid[1] == SMALL
    assert with_tutorial([TUTORIAL_PARAMS]) == [TUTORIAL_PARAMS]
    with pytest.raises(ValueError, match="duplicate"):
        with_tutorial([SMALL, SMALL])


def test_parallel_grid_equals_sequential_training(tmp_path):
    grid = [SMALL, Word2VecParams(**{**SMALL.as_dict(), "sg": 1})]
    lines: list[str] = []
    trained = train_grid(CORPUS, grid, tmp_path, max_parallel=2, log=lines.append)
    assert [t.name for t in trained] == [p.name for p in grid]
    for params, result in zip(grid, trained, strict=True):
        saved = Embeddings.load(tmp_path / params.name, params)
        alone = train_embeddings(CORPUS, params)
        assert saved.keys == alone.keys
        assert np.array_equal(saved.vectors, alone.vectors)
        assert result.vocabulary_size == 40
    assert any("epoch 3/3" in line for line in lines)


def test_empty_vocabulary_is_a_clear_error_and_skips_only_that_candidate(tmp_path):
    from ml.embeddings import EmptyVocabularyError

    rare = Word2VecParams(vector_size=8, min_count=10_000, epochs=1)
    with pytest.raises(EmptyVocabularyError, match="min_count=10000"):
        train_embeddings(CORPUS, rare)
    lines: list[str] = []
    trained = train_grid(CORPUS, [rare, SMALL], tmp_path, max_parallel=2, log=lines.append)
    assert [t.name for t in trained] == [SMALL.name]
    assert any(line.startswith("skipped") for line in lines)
    with pytest.raises(EmptyVocabularyError, match="no grid candidate"):
        train_grid(CORPUS, [rare], tmp_path, max_parallel=1, log=lines.append)
