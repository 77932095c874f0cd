"""Selection on validation, one scoring on test, and the MLflow registry with promotion."""

import dagster as dg
import mlflow as mlflow_lib
import pandas as pd

from ml.baselines import MostPopular, all_baselines
from ml.bundle import load_bundle, save_bundle
from ml.embeddings import Embeddings, Word2VecParams
from ml.evaluation import evaluate, markdown_table
from ml.pyfunc_model import recommend_frame
from ml.recommender import EmbeddingRecommender, QueryStrategy
from ml.registry import (
    CHAMPION,
    MODEL_NAME,
    PROMOTION_METRIC,
    current_champion,
    log_and_register,
    promote,
    pyfunc_hit_rate,
)
from ml.retrieval import VectorIndex
from ml.warehouse import read_split, read_table_rows
from orchestration.assets.handover import (
    CANDIDATE_METRICS,
    CANDIDATES_DIR,
    DIM_TRACKS,
    SELECTED_DIR,
    SELECTED_SUMMARY,
    evaluation_ks,
    metric_columns,
    read_json,
    write_json,
)
from orchestration.assets.training import candidate_metrics
from orchestration.resources import MlflowResource
from orchestration.settings import WAREHOUSE_PATH, WAREHOUSE_POOL


@dg.asset(
    deps=[candidate_metrics, DIM_TRACKS],
    group_name="next_track",
    pool=WAREHOUSE_POOL,
    description="The best candidate on validation, scored once on test beside the baselines; "
    "saved as the bundle the MLflow model serves.",
)
def selected_model(context: dg.AssetExecutionContext):
    chosen_from = read_json(CANDIDATE_METRICS)
    k = chosen_from["k"]
    name = chosen_from["best"]
    spec = chosen_from["candidates"][name]
    params, strategy = Word2VecParams(**spec["params"]), QueryStrategy(**spec["strategy"])
    train = read_split(WAREHOUSE_PATH, "train")
    test = read_split(WAREHOUSE_PATH, "test")
    if not test.sequences:
        raise dg.Failure("the test split is empty: the selected model cannot be scored")
    ks = evaluation_ks(k)
    catalog = len({t for s in train.sequences for t in s})
    embeddings = Embeddings.load(CANDIDATES_DIR / params.name, params)
    popular = MostPopular.from_sequences(train.sequences)
    index = VectorIndex(embeddings.keys, embeddings.vectors)
    recommender = EmbeddingRecommender(index, popular, strategy, seed=params.seed)
    test_results = {name: evaluate(recommender.recommend, test, catalog, ks, index.ids)}
    for baseline in all_baselines(train.sequences):
        test_results[baseline.name] = evaluate(baseline.recommend, test, catalog, ks)
    save_bundle(
        SELECTED_DIR,
        embeddings,
        strategy,
        read_table_rows(WAREHOUSE_PATH, "dim_tracks"),
        popular.counts,
        extra={"candidate": name, "data_fingerprint": chosen_from["data_fingerprint"]},
    )
    write_json(
        SELECTED_SUMMARY,
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
    return dg.MaterializeResult(
        metadata={
            "candidate": name,
            f"test_hit_rate_at_{k}": test_results[name][f"hit_rate_at_{k}"],
            f"test_most_popular_hit_rate_at_{k}": test_results["most_popular"][f"hit_rate_at_{k}"],
            "test_queries": len(test.sequences),
            "test_metrics": dg.MetadataValue.md(markdown_table(test_results, metric_columns(k))),
        }
    )


def champion_score_on(mlflow: MlflowResource, test, k: int) -> tuple[str | None, float | None]:
    """The current champion re-scored on this test split, so the comparison is like for like."""
    version = current_champion(mlflow.client())
    if version is None:
        return None, None
    model = mlflow_lib.pyfunc.load_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    return version, pyfunc_hit_rate(model, test.sequences, test.labels, k)


@dg.asset(
    deps=[selected_model],
    group_name="next_track",
    kinds={"mlflow"},
    pool=WAREHOUSE_POOL,
    description="The selected model logged as an MLflow pyfunc, registered as next-track and "
    "aliased champion (if it beats the champion on this test split) or challenger.",
)
def registered_model(context: dg.AssetExecutionContext, mlflow: MlflowResource):
    selected = read_json(SELECTED_SUMMARY)
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
    config = read_json(SELECTED_DIR / "config.json")
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
            **(
                {"champion_before_test_hit_rate_at_100_on_this_split": champion_score}
                if champion_score is not None
                else {}
            ),
            "mlflow_run": dg.MetadataValue.url(mlflow.run_url(experiment_id, run_id)),
            "model_uri": f"models:/{MODEL_NAME}/{version}",
        }
    )
