"""Benchmark on a ~1M-row synthetic run: training throughput, batched top-K vs gensim's per-row
``most_similar``, and peak memory. Not a test: run it with ``make bench``.

    python benchmarks/bench_training_and_retrieval.py [--playlists 45000] [--queries 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors, Word2Vec

from ml.embeddings import Word2VecParams, train_embeddings
from ml.retrieval import VectorIndex
from ml.sources import ingest
from ml.sources.synthetic import SyntheticSpec
from ml.warehouse import read_split

REPO_ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_splits(data_dir: Path, playlists: int) -> int:
    report = ingest(
        None, data_dir / "raw" / "playlist_events.parquet", synthetic=SyntheticSpec(playlists)
    )
    subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "build",
            "--project-dir",
            "dbt_project",
            "--profiles-dir",
            "profiles",
            "--quiet",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "NEXT_TRACK_DATA_DIR": str(data_dir)},
        check=True,
    )
    return report.rows_written


def gensim_throughput(sequences, params: Word2VecParams, **mode) -> float:
    started = time.perf_counter()
    model = Word2Vec(**params.as_dict(), **mode)
    if "corpus_file" in mode:
        return model.corpus_total_words * params.epochs / (time.perf_counter() - started)
    model.build_vocab(sequences)
    model.train(sequences, total_examples=model.corpus_count, epochs=params.epochs)
    return model.corpus_total_words * params.epochs / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--playlists", type=int, default=45_000)
    parser.add_argument("--queries", type=int, default=2_000, help="for per-row most_similar")
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        results["rows"] = build_splits(data_dir, args.playlists)
        train = read_split(data_dir / "warehouse.duckdb", "train")
        validation = read_split(data_dir / "warehouse.duckdb", "validation")
        results["peak_rss_mib_after_reading"] = peak_rss_mib()
        print(json.dumps(results), flush=True)

        params = Word2VecParams()  # the tutorial's
        embeddings = train_embeddings(train.sequences, params)
        results["train_words_per_second_ours_workers1"] = embeddings.words_per_second
        results["train_seconds_ours_workers1"] = embeddings.train_seconds
        results["vocabulary_size"] = len(embeddings.keys)
        results["peak_rss_mib_after_training"] = peak_rss_mib()
        print(json.dumps(results), flush=True)
        results["gensim_words_per_second_iterable_workers2"] = gensim_throughput(
            train.sequences, params, workers=2
        )
        # LineSentence splits on white space and track keys contain spaces: write ids instead.
        token_ids: dict[str, str] = {}
        corpus_file = data_dir / "corpus.txt"
        with corpus_file.open("w") as f:
            for sequence in train.sequences:
                f.write(" ".join(token_ids.setdefault(t, str(len(token_ids))) for t in sequence))
                f.write("\n")
        results["gensim_words_per_second_corpus_file_workers2"] = gensim_throughput(
            None, params, corpus_file=str(corpus_file), workers=2
        )

        # Same queries for both: the last validation track, itself excluded (as most_similar does).
        index = VectorIndex(embeddings.keys, embeddings.vectors)
        pairs = zip(validation.sequences, validation.labels, strict=True)
        rows = [(q[-1], label) for q, label in pairs if q[-1] in index.ids]
        last_ids = [index.ids[last] for last, _ in rows]
        started = time.perf_counter()
        top_ids, _ = index.top_k(index.unit[last_ids], args.k, exclude=[[i] for i in last_ids])
        batched_seconds = time.perf_counter() - started
        batched_hits = [
            label in {index.keys[j] for j in row}
            for row, (_, label) in zip(top_ids, rows, strict=True)
        ]
        results["queries"] = len(rows)
        results["batched_queries_per_second"] = len(rows) / batched_seconds
        results["peak_rss_mib_after_batched_topk"] = peak_rss_mib()

        keyed = KeyedVectors(vector_size=embeddings.vectors.shape[1])  # as the tutorial's model.wv
        keyed.add_vectors(embeddings.keys, embeddings.vectors)
        sample = rows[: args.queries]
        started = time.perf_counter()
        per_row_hits = [
            label in {key for key, _ in keyed.most_similar(positive=[last], topn=args.k)}
            for last, label in sample
        ]
        per_row_seconds = time.perf_counter() - started
        results["most_similar_queries_per_second"] = len(sample) / per_row_seconds
        results["speedup_batched_vs_most_similar"] = (
            results["batched_queries_per_second"] / results["most_similar_queries_per_second"]
        )
        results["same_hits_on_compared_queries"] = float(
            per_row_hits == batched_hits[: len(sample)]
        )
        results["hit_rate_at_k_batched"] = float(np.mean(batched_hits))
        results["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
