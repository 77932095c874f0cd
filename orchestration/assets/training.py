"""Downstream of the dbt marts: train the grid, evaluate against baselines, select, register.

Algorithms live in ``ml``; these assets read config, move files and report metadata. Assets
hand over through files under data/models (JSON summaries, embedding folders, the model bundle).
"""

import json
from dataclasses import asdict
from typing import Literal

import dagster as dg
import pandas as pd
from dagster_dbt import get_asset_key_for_model
from pydantic import Field

from ml.baselines import MostPopular, SequentialRules
from ml.bundle import load_bundle, save_bundle
from ml.embeddings import Embeddings, Word2VecParams, corpus_fingerprint
from ml.evaluation import bar_chart_markdown, best_candidate, evaluate, markdown_table
from ml.pyfunc_model import recommend_frame
from ml.recommender import EmbeddingRecommender, QueryStrategy
from ml.registry import CHAMPION, MODEL_NAME, PROMOTION_METRIC, log_and_register, log_run, promote
from ml.retrieval import VectorIndex
from ml.tuning import train_grid, with_tutorial
from ml.warehouse import read_split, read_table_rows
from orchestration.assets.dbt import dbt_models
from orchestration.resources import MlflowResource
from orchestration.settings import MODELS_DIR, WAREHOUSE_PATH, WAREHOUSE_POOL

PLAYLIST_SPLITS = get_asset_key_for_model([dbt_models], "playlist_splits")
DIM_TRACKS = get_asset_key_for_model([dbt_models], "dim_tracks")
CANDIDATES_DIR = MODELS_DIR / "candidates"
SELECTED_DIR = MODELS_DIR / "selected"


class CandidateConfig(dg.Config):
    """One point of the grid (gensim Word2Vec hyperparameters)."""

    vector_size: int = Field(default=48, ge=2, le=1024)
    window: int = Field(default=10, ge=1, le=100)
    min_count: int = Field(default=3, ge=1)
    epochs: int = Field(default=30, ge=1, le=500)
    ns_exponent: float = Field(default=0.75, ge=-2.0, le=2.0)
    sg: int = Field(default=0, ge=0, le=1, description="1 = skip-gram, 0 = CBOW")
    negative: int = Field(default=5, ge=1, le=50)
    sample: float = Field(default=1e-3, ge=0.0, lt=1.0)


# Defaults are plain dicts: Dagster's config schema holds data, not Config objects.
DEFAULT_GRID = [
    {},  # the reference tutorial
    # Caselles-Dupré et al. 2018 on music: skip-gram, small window, negative ns_exponent
    {"sg": 1, "window": 3, "min_count": 1, "ns_exponent": -0.5, "sample": 1e-5},
    {"vector_size": 64, "window": 5, "min_count": 1},
    {"sg": 1, "vector_size": 64, "window": 5, "min_count": 1},
]


class StrategyConfig(dg.Config):
    kind: Literal["last", "last_known", "recency_mean"] = "recency_mean"
    n_last: int = Field(default=5, ge=1, le=100)
    decay: float = Field(default=0.7, gt=0.0, le=1.0)
    unknown: Literal["popular", "random"] = "popular"
    exclude_seen: bool = True


DEFAULT_STRATEGIES = [
    {"kind": "last", "unknown": "random", "exclude_seen": False},  # the tutorial's
    {"kind": "last"},
    {"kind": "last_known"},
    {"kind": "recency_mean", "n_last": 5, "decay": 0.7},
    {"kind": "recency_mean", "n_last": 3, "decay": 0.5},
]


class TrainingConfig(dg.Config):
    grid: list[CandidateConfig] = Field(
        default=DEFAULT_GRID, description="Hyperparameter candidates (tutorial's always added)."
    )
    seed: int = 42
    max_parallel: int = Field(default=2, ge=1, le=64, description="Candidates trained at once.")


class EvaluationConfig(dg.Config):
    strategies: list[StrategyConfig] = Field(default=DEFAULT_STRATEGIES)
    k: int = Field(default=100, ge=1, le=10_000, description="K of hit rate@K used to select.")


def _ks(k: int) -> tuple[int, ...]:
    """10, 20 and 100 always (100 is the promotion metric's K), plus the configured K."""
    return tuple(sorted({10, 20, 100, k}))


def _write_json(path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, default=str), encoding="utf-8")


def _read_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


@dg.asset(
    deps=[PLAYLIST_SPLITS],
    group_name="training",
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
    trained = train_grid(
        train.sequences, grid, CANDIDATES_DIR, config.max_parallel, context.log.info
    )
    summary = {
        "data_fingerprint": fingerprint,
        "candidates": [asdict(t) for t in trained],
    }
    _write_json(MODELS_DIR / "track_embeddings.json", summary)
    rows = {
        t.name: {
            "train_seconds": t.train_seconds,
            "words_per_second": t.words_per_second,
            "vocabulary_size": t.vocabulary_size,
        }
        for t in trained
    }
    return dg.MaterializeResult(
        metadata={
            "candidates": len(trained),
            "data_fingerprint": fingerprint,
            "gensim_version": trained[0].gensim_version,
            "training_seconds_total": sum(t.train_seconds for t in trained),
            "vocabulary_size_max": max(t.vocabulary_size for t in trained),
            "training": dg.MetadataValue.md(
                markdown_table(rows, ["train_seconds", "words_per_second", "vocabulary_size"])
            ),
        }
    )


def _baselines(train_sequences):
    return [MostPopular.from_sequences(train_sequences), SequentialRules(train_sequences)]


@dg.asset(
    deps=[track_embeddings, PLAYLIST_SPLITS],
    group_name="training",
    kinds={"mlflow"},
    pool=WAREHOUSE_POOL,
    description="Validation metrics of every candidate (embedding x query strategy) and of the "
    "baselines; one MLflow run each.",
)
def candidate_metrics(
    context: dg.AssetExecutionContext, config: EvaluationConfig, mlflow: MlflowResource
):
    embeddings_summary = _read_json(MODELS_DIR / "track_embeddings.json")
    train = read_split(WAREHOUSE_PATH, "train")
    validation = read_split(WAREHOUSE_PATH, "validation")
    if not validation.sequences:
        raise dg.Failure("the validation split is empty: nothing to compare candidates on")
    ks = _ks(config.k)
    catalog = len({t for s in train.sequences for t in s})
    experiment_id = mlflow.experiment_id()
    tags = {
        "dagster_run_id": context.run.run_id,
        "data_fingerprint": embeddings_summary["data_fingerprint"],
        "split": "validation",
    }
    results: dict[str, dict[str, float]] = {}
    candidates: dict[str, dict] = {}
    for baseline in _baselines(train.sequences):
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
    _write_json(
        MODELS_DIR / "candidate_metrics.json",
        {"k": config.k, "results": results, "candidates": candidates, **tags},
    )
    k = config.k
    best = best_candidate({n: results[n] for n in candidates}, k)
    columns = [f"hit_rate_at_{x}" for x in ks] + [f"mrr_at_{k}", f"ndcg_at_{k}", f"coverage_at_{k}"]
    columns.append("unknown_last_track_share")
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


@dg.asset(
    deps=[candidate_metrics, DIM_TRACKS],
    group_name="training",
    pool=WAREHOUSE_POOL,
    description="The best candidate on validation, scored once on test beside the baselines; "
    "saved as the bundle the MLflow model serves.",
)
def selected_model(context: dg.AssetExecutionContext):
    chosen_from = _read_json(MODELS_DIR / "candidate_metrics.json")
    k = chosen_from["k"]
    name = best_candidate({n: chosen_from["results"][n] for n in chosen_from["candidates"]}, k)
    spec = chosen_from["candidates"][name]
    params, strategy = Word2VecParams(**spec["params"]), QueryStrategy(**spec["strategy"])
    train = read_split(WAREHOUSE_PATH, "train")
    test = read_split(WAREHOUSE_PATH, "test")
    if not test.sequences:
        raise dg.Failure("the test split is empty: the selected model cannot be scored")
    ks = _ks(k)
    catalog = len({t for s in train.sequences for t in s})
    embeddings = Embeddings.load(CANDIDATES_DIR / params.name, params)
    popular = MostPopular.from_sequences(train.sequences)
    index = VectorIndex(embeddings.keys, embeddings.vectors)
    recommender = EmbeddingRecommender(index, popular, strategy, seed=params.seed)
    test_results = {name: evaluate(recommender.recommend, test, catalog, ks, index.ids)}
    for baseline in _baselines(train.sequences):
        test_results[baseline.name] = evaluate(baseline.recommend, test, catalog, ks)
    save_bundle(
        SELECTED_DIR,
        embeddings,
        strategy,
        read_table_rows(WAREHOUSE_PATH, "dim_tracks"),
        popular.counts,
        extra={"candidate": name, "data_fingerprint": chosen_from["data_fingerprint"]},
    )
    _write_json(
        MODELS_DIR / "selected_model.json",
        {
            "candidate": name,
            "k": k,
            "validation": chosen_from["results"][name],
            "test": test_results,
            "data_fingerprint": chosen_from["data_fingerprint"],
        },
    )
    context.log.info(
        f"selected {name}: test hit rate@{k} {test_results[name][f'hit_rate_at_{k}']:.4f}"
    )
    columns = [f"hit_rate_at_{x}" for x in ks] + [f"mrr_at_{k}", f"ndcg_at_{k}", f"coverage_at_{k}"]
    return dg.MaterializeResult(
        metadata={
            "candidate": name,
            f"test_hit_rate_at_{k}": test_results[name][f"hit_rate_at_{k}"],
            f"test_most_popular_hit_rate_at_{k}": test_results["most_popular"][f"hit_rate_at_{k}"],
            "test_queries": len(test.sequences),
            "test_metrics": dg.MetadataValue.md(markdown_table(test_results, columns)),
        }
    )


@dg.asset_check(asset=selected_model, blocking=True)
def selected_model_beats_popularity() -> dg.AssetCheckResult:
    """The chosen model's test hit rate@K must exceed the most-popular baseline's."""
    selected = _read_json(MODELS_DIR / "selected_model.json")
    metric = f"hit_rate_at_{selected['k']}"
    model, popular = (
        selected["test"][selected["candidate"]][metric],
        selected["test"]["most_popular"][metric],
    )
    return dg.AssetCheckResult(
        passed=model > popular,
        metadata={f"model_test_{metric}": model, f"most_popular_test_{metric}": popular},
        description=f"{selected['candidate']} {model:.4f} vs most popular {popular:.4f}",
    )


def champion_score_on(mlflow: MlflowResource, test, k: int) -> tuple[str | None, float | None]:
    """The current champion re-scored on this test split, so the comparison is like for like."""
    import mlflow as mlflow_lib

    from ml.registry import current_champion

    version = current_champion(mlflow.client())
    if version is None:
        return None, None
    model = mlflow_lib.pyfunc.load_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    output = model.predict(pd.DataFrame({"tracks": test.sequences}), params={"k": k})
    recommended = output.groupby("row")["track_key"].apply(list).reindex(range(len(test.sequences)))
    hits = sum(
        1
        for recs, label in zip(recommended, test.labels, strict=True)
        if isinstance(recs, list) and label in recs
    )
    return version, hits / len(test.labels)


@dg.asset(
    deps=[selected_model],
    group_name="training",
    kinds={"mlflow"},
    pool=WAREHOUSE_POOL,
    description="The selected model logged as an MLflow pyfunc, registered as next-track and "
    "aliased champion (if it beats the champion on this test split) or challenger.",
)
def registered_model(context: dg.AssetExecutionContext, mlflow: MlflowResource):
    import mlflow as mlflow_lib

    selected = _read_json(MODELS_DIR / "selected_model.json")
    k = selected["k"]
    name = selected["candidate"]
    test_metrics = {
        f"test_{metric}": value
        for metric, value in selected["test"][name].items()
        if metric != "queries"
    }
    for baseline in ("most_popular", "sequential_rules"):
        test_metrics.update(
            {
                f"test_{baseline}_{m}": v
                for m, v in selected["test"][baseline].items()
                if m != "queries"
            }
        )
    validation = {f"validation_{m}": v for m, v in selected["validation"].items() if m != "queries"}
    config = _read_json(SELECTED_DIR / "config.json")
    params = {
        **config["params"],
        **{f"query_{key}": value for key, value in config["strategy"].items()},
        "candidate": name,
        "k": k,
    }
    test = read_split(WAREHOUSE_PATH, "test")
    bundle = load_bundle(SELECTED_DIR)
    example_tracks = test.sequences[0][-3:]
    example_output = recommend_frame(bundle, pd.DataFrame({"tracks": [example_tracks]}), 10)
    experiment_id = mlflow.experiment_id()
    mlflow_lib.set_tracking_uri(mlflow.tracking_uri)
    champion_before, champion_score = champion_score_on(mlflow, test, 100)
    run_id, version = log_and_register(
        experiment_id,
        SELECTED_DIR,
        params,
        {**test_metrics, **validation},
        {
            "dagster_run_id": context.run.run_id,
            "data_fingerprint": selected["data_fingerprint"],
            "gensim_version": config["gensim_version"],
            "kind": "selected",
        },
        example_tracks,
        example_output,
    )
    score = test_metrics[PROMOTION_METRIC]
    alias = promote(mlflow.client(), version, score, champion_score)
    context.log.info(
        f"registered {MODEL_NAME} v{version} as {alias} (test hit rate@100 {score:.4f}; "
        f"champion before: {champion_before} at {champion_score})"
    )
    return dg.MaterializeResult(
        metadata={
            "model_name": MODEL_NAME,
            "model_version": version,
            "alias": alias,
            PROMOTION_METRIC: score,
            "champion_before": champion_before or "none",
            "champion_before_score_on_this_split": champion_score
            if champion_score is not None
            else -1.0,
            "mlflow_run": dg.MetadataValue.url(mlflow.run_url(experiment_id, run_id)),
            "model_uri": f"models:/{MODEL_NAME}/{version}",
        }
    )
