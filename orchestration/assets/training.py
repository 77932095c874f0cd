"""Training and validation: the hyperparameter grid, then every candidate against baselines."""

from dataclasses import asdict
from pathlib import Path

import dagster as dg

from ml.baselines import MostPopular, all_baselines
from ml.embeddings import Embeddings, EmptyVocabularyError, Word2VecParams, corpus_fingerprint
from ml.evaluation import bar_chart_markdown, best_candidate, evaluate, markdown_table
from ml.recommender import EmbeddingRecommender, QueryStrategy
from ml.registry import log_run
from ml.retrieval import VectorIndex
from ml.tuning import train_grid, with_tutorial
from ml.warehouse import read_split
from orchestration.assets.handover import (
    CANDIDATE_METRICS,
    CANDIDATES_DIR,
    EMBEDDINGS_SUMMARY,
    PLAYLIST_SPLITS,
    evaluation_ks,
    metric_columns,
    read_json,
    write_json,
)
from orchestration.config import EvaluationConfig, TrainingConfig
from orchestration.resources import MlflowResource
from orchestration.settings import WAREHOUSE_PATH, WAREHOUSE_POOL


def vocabulary_coverage(folder: Path, tracks: list[str]) -> float:
    """Share of ``tracks`` that the embeddings saved in ``folder`` know."""
    known = set((folder / "keys.txt").read_text(encoding="utf-8").splitlines())
    return sum(1 for t in tracks if t in known) / len(tracks) if tracks else 0.0


@dg.asset(
    deps=[PLAYLIST_SPLITS],
    group_name="next_track",
    kinds={"gensim"},
    pool=WAREHOUSE_POOL,
    description="Word2Vec track embeddings, one per grid candidate, trained in parallel "
    "processes on the train split.",
)
def track_embeddings(context: dg.AssetExecutionContext, config: TrainingConfig):
    train = read_split(WAREHOUSE_PATH, "train")
    if not train.sequences:
        raise dg.Failure("the train split is empty: nothing to learn from")
    fingerprint = corpus_fingerprint(train.sequences)
    grid = with_tutorial([Word2VecParams(**c.model_dump(), seed=config.seed) for c in config.grid])
    context.log.info(
        f"training {len(grid)} candidates on {len(train.sequences):,} playlists "
        f"(data {fingerprint}), {config.max_parallel} at a time"
    )
    try:
        trained = train_grid(
            train.sequences, grid, CANDIDATES_DIR, config.max_parallel, context.log.info
        )
    except EmptyVocabularyError as e:
        raise dg.Failure(description=str(e), allow_retries=False) from e
    validation_last = [q[-1] for q in read_split(WAREHOUSE_PATH, "validation").sequences]
    coverage = {t.name: vocabulary_coverage(Path(t.folder), validation_last) for t in trained}
    summary = {
        "data_fingerprint": fingerprint,
        "candidates": [asdict(t) for t in trained],
        "validation_last_track_coverage": coverage,
    }
    write_json(EMBEDDINGS_SUMMARY, summary)
    rows = {
        t.name: {
            "train_seconds": t.train_seconds,
            "words_per_second": t.words_per_second,
            "vocabulary_size": t.vocabulary_size,
            "validation_last_track_coverage": coverage[t.name],
        }
        for t in trained
    }
    return dg.MaterializeResult(
        metadata={
            "candidates": len(trained),
            "candidates_skipped_empty_vocabulary": len(grid) - len(trained),
            "data_fingerprint": fingerprint,
            "gensim_version": trained[0].gensim_version,
            "training_seconds_total": sum(t.train_seconds for t in trained),
            "vocabulary_size_max": max(t.vocabulary_size for t in trained),
            "training": dg.MetadataValue.md(
                markdown_table(
                    rows,
                    [
                        "train_seconds",
                        "words_per_second",
                        "vocabulary_size",
                        "validation_last_track_coverage",
                    ],
                )
            ),
        }
    )


@dg.asset(
    deps=[track_embeddings, PLAYLIST_SPLITS],
    group_name="next_track",
    kinds={"mlflow"},
    pool=WAREHOUSE_POOL,
    description="Validation metrics of every candidate (embedding x query strategy) and of the "
    "baselines; one MLflow run each.",
)
def candidate_metrics(
    context: dg.AssetExecutionContext, config: EvaluationConfig, mlflow: MlflowResource
):
    embeddings_summary = read_json(EMBEDDINGS_SUMMARY)
    train = read_split(WAREHOUSE_PATH, "train")
    validation = read_split(WAREHOUSE_PATH, "validation")
    if not validation.sequences:
        raise dg.Failure("the validation split is empty: nothing to compare candidates on")
    ks = evaluation_ks(config.k)
    catalog = len({t for s in train.sequences for t in s})
    experiment_id = mlflow.experiment_id()
    tags = {
        "dagster_run_id": context.run.run_id,
        "data_fingerprint": embeddings_summary["data_fingerprint"],
        "split": "validation",
    }
    results: dict[str, dict[str, float]] = {}
    candidates: dict[str, dict] = {}
    for baseline in all_baselines(train.sequences):
        results[baseline.name] = evaluate(baseline.recommend, validation, catalog, ks)
        log_run(experiment_id, baseline.name, {"kind": "baseline"}, results[baseline.name], tags)
    popular = MostPopular.from_sequences(train.sequences)
    for trained in embeddings_summary["candidates"]:
        params = Word2VecParams(**trained["params"])
        embeddings = Embeddings.load(CANDIDATES_DIR / params.name, params)
        index = VectorIndex(embeddings.keys, embeddings.vectors)
        for strategy_config in config.strategies:
            strategy = QueryStrategy(**strategy_config.model_dump())
            name = f"{params.name}+{strategy.name}"
            recommender = EmbeddingRecommender(index, popular, strategy, seed=params.seed)
            results[name] = evaluate(recommender.recommend, validation, catalog, ks, index.ids)
            candidates[name] = {"params": params.as_dict(), "strategy": strategy.as_dict()}
            log_run(
                experiment_id,
                name,
                {**params.as_dict(), **{f"query_{k}": v for k, v in strategy.as_dict().items()}},
                results[name],
                {**tags, "gensim_version": trained["gensim_version"], "kind": "candidate"},
            )
        context.log.info(f"evaluated {params.name} with {len(config.strategies)} strategies")
    k = config.k
    best = best_candidate({n: results[n] for n in candidates}, k)
    write_json(
        CANDIDATE_METRICS,
        {"k": k, "best": best, "results": results, "candidates": candidates, **tags},
    )
    columns = [*metric_columns(k), "unknown_last_track_share"]
    return dg.MaterializeResult(
        metadata={
            "best_candidate": best,
            f"best_validation_hit_rate_at_{k}": results[best][f"hit_rate_at_{k}"],
            f"most_popular_validation_hit_rate_at_{k}": results["most_popular"][f"hit_rate_at_{k}"],
            "validation_queries": len(validation.sequences),
            "metrics": dg.MetadataValue.md(markdown_table(results, columns)),
            "plot": dg.MetadataValue.md(bar_chart_markdown(results, f"hit_rate_at_{k}")),
            "mlflow_experiment": dg.MetadataValue.url(
                f"{mlflow.ui_url}/#/experiments/{experiment_id}"
            ),
        }
    )
