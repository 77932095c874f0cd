"""The faiss lever, weighed: exact inner-product top-100 of 10,000 queries over a vocabulary of
Word2Vec vectors, with the platform's numpy path (score blocks, then ``top_k_dense``) against
faiss's ``IndexFlatIP``. faiss is not a dependency: ``pip install faiss-cpu`` first.

    python benchmarks/bench_faiss_top_k.py --vocabulary 650000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ml.recommenders.topk import top_k_dense
from ml.sequences import Sequences

QUERIES, DIMENSION, K = 10_000, 48, 100
SCORE_CELLS_PER_BATCH = 1 << 25  # as ml.recommenders.base.Recommender


def main() -> None:
    import faiss  # only this benchmark needs it

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vocabulary", type=int, default=650_000)
    vocabulary = parser.parse_args().vocabulary
    rng = np.random.default_rng(0)
    items = rng.standard_normal((vocabulary, DIMENSION), dtype=np.float32)
    queries = rng.standard_normal((QUERIES, DIMENSION), dtype=np.float32)

    started = time.perf_counter()
    batch = int(np.clip(SCORE_CELLS_PER_BATCH // vocabulary, 16, 2048))
    blocks = []
    for first in range(0, QUERIES, batch):
        block = queries[first : first + batch] @ items.T
        blocks.append(top_k_dense(block, K, Sequences.empty(len(block)))[0])
    numpy_ids = np.vstack(blocks)
    numpy_seconds = time.perf_counter() - started

    index = faiss.IndexFlatIP(DIMENSION)
    index.add(items)
    started = time.perf_counter()
    _, faiss_ids = index.search(queries, K)
    faiss_seconds = time.perf_counter() - started

    same = (np.sort(numpy_ids, axis=1) == np.sort(faiss_ids, axis=1)).mean()
    print(
        f"vocabulary {vocabulary:,}, {QUERIES:,} queries, top {K}: numpy {numpy_seconds:.1f} s, "
        f"faiss {faiss_seconds:.1f} s ({faiss.omp_get_max_threads()} threads); "
        f"same items {same:.4f}"
    )


if __name__ == "__main__":
    main()
