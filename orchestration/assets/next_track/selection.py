"""Selection on validation across families (with their hybrid), then the winner scored once on
test beside the baselines and saved as the bundle MLflow ships."""

import time
from dataclasses import dataclass
from pathlib import PurePosixPath

import dagster as dg

from ml.evaluation.candidates import CandidateResult, ScoredComponents, evaluate
from ml.evaluation.metrics import hit_rate_curve, metrics_by_query_length
from ml.evaluation.report import (
    plot_by_query_length,
    plot_feature_importances,
    plot_hit_rate_curves,
    plot_validation_bars,
    query_length_rows,
)
from ml.evaluation.reranking import build_reranker
from ml.evaluation.selection import (
    GATE_METRICS,
    REPORTED_METRICS,
    best_per_family,
    build_hybrid,
    candidate_table,
    cutoff_of,
    finalists,
    first_meeting_baselines,
    next_track_ranked,
    tiebreak_of,
)
from ml.recommenders.popularity import Popularity
from ml.registry import log_to_run
from ml.serving.bundle import bundle_bytes, save_bundle, serving_latency_ms
from orchestration.assets.grid import UnitOutcome
from orchestration.assets.next_track.candidates import (
    EXPERIMENT,
    METRIC_KS,
    baseline_candidates,
    neighbourhood_candidates,
    sequential_rules_candidates,
    slist_candidates,
    track_embeddings,
)
from orchestration.assets.next_track.dataset import DatasetHandle
from orchestration.assets.registration import logged_metrics
from orchestration.config import SelectionConfig
from orchestration.metadata import for_display, mlflow_plot, rows_table
from orchestration.resources import MlflowResource
from orchestration.settings import WORKER_NAME
from orchestration.storage import RunStorage, run_key


@dataclass
class Selection:
    metric: str  # the validation metric it was selected on
    selected: CandidateResult
    baselines: list[CandidateResult]
    rows: list[dict]  # the validation table
    plots: dict[str, str]  # name -> PNG in the run store
    validation_sample: int
    validation_queries: int
    min_validation_queries: int  # the gate's floor


@dataclass
class SelectedModel:
    candidate: str
    family: str
    metric: str  # the validation metric it was selected on
    bundle_key: str  # the bundle's folder in the run store
    validation: dict[str, dict[str, float]]  # name -> metrics (selected and baselines)
    test: dict[str, dict[str, float]]
    params: dict
    bundle_bytes: int
    latency_ms_p50: float


def popularity_of(data) -> Popularity:
    return Popularity.from_counts(data.catalogue.train_counts)


@dg.asset(
    ins={
        "word2vec": dg.AssetIn(track_embeddings.key),
        "sequential_rules": dg.AssetIn(sequential_rules_candidates.key),
        "neighbourhood": dg.AssetIn(neighbourhood_candidates.key),
        "slist": dg.AssetIn(slist_candidates.key),
        "baselines": dg.AssetIn(baseline_candidates.key),
    },
    group_name="next_track",
    kinds={"mlflow"},
    description="Every candidate and baseline on validation, a hybrid of each family's best, "
    "the finalists re-scored on the whole validation split, and the winner: the table and the "
    "hit rate@K plot that say why it won (selected on the run config's metric, NDCG@10 by "
    "default).",
)
def candidate_metrics(
    context: dg.AssetExecutionContext,
    config: SelectionConfig,
    next_track_dataset: DatasetHandle,
    word2vec: list[UnitOutcome],
    sequential_rules: list[UnitOutcome],
    neighbourhood: list[UnitOutcome],
    slist: list[UnitOutcome],
    baselines: list[UnitOutcome],
    storage: RunStorage,
    mlflow: MlflowResource,
) -> Selection:
    metric = config.metric
    outcomes = [*word2vec, *sequential_rules, *neighbourhood, *slist, *baselines]
    results = [r for o in outcomes for r in o.results]
    skipped = {o.unit: o.skipped for o in outcomes if o.skipped}
    if not any(not r.baseline for r in results):
        raise dg.Failure(
            "no candidate could fit: "
            + ("; ".join(f"{u}: {why}" for u, why in skipped.items()) or "the grid is empty"),
            allow_retries=False,
        )
    data = next_track_dataset.load(storage)
    popularity = popularity_of(data)
    sample = next_track_dataset.sampled_validation(data)
    run_id = context.run.run_id
    tops, plots = {}, {}
    depths = [config.hybrid_depth] * config.hybrid + [config.reranker_depth] * config.reranker
    second_stage = best_per_family(results, metric) if depths else []  # scored only if used
    best = ScoredComponents.of(second_stage, storage, sample, max([*depths, *METRIC_KS]))
    components = best.contributing(
        sample.labels, len(data.catalogue), config.min_unique_share, context.log.info
    )
    if config.reranker:
        reranked = build_reranker(
            components, train=data.train, catalogue=data.catalogue,
            validation=data.validation, sample_rows=next_track_dataset.validation_sample_rows(data),
            popularity=popularity, store=storage, key=run_key(run_id, "candidates", "reranker"),
            ks=METRIC_KS, depth=config.reranker_depth, vectors=best.item_vectors(),
            log=context.log.info,
        )  # fmt: skip
        if reranked is not None:
            reranker, tops[reranker.name], model = reranked
            results.append(reranker)
            plots["reranker_feature_importance"] = run_key(run_id, "plots", "reranker_gain.png")
            plot_feature_importances(
                model.importances(), storage.writable(plots["reranker_feature_importance"])
            )
    if config.hybrid:
        hybrid = build_hybrid(
            components, sample, popularity, storage,
            run_key(run_id, "candidates", "hybrid"), cutoff_of(metric), config.hybrid_depth,
            METRIC_KS,
            context.log.info,
        )  # fmt: skip
        if hybrid is not None:
            context.log.info(f"hybrid {hybrid.name}: {metric} {hybrid.metrics[metric]:.4f}")
            results.append(hybrid)
    contenders = finalists([r for r in results if not r.baseline], metric, config.finalists)
    sampled = len(sample) < len(data.validation)

    def on_all_validation(result: CandidateResult) -> CandidateResult:
        # The reranker was measured on the whole split already, out of sample.
        if sampled and result.name not in tops:
            began = time.perf_counter()
            result.metrics, tops[result.name] = evaluate(
                result.load(storage), data.validation, popularity, METRIC_KS
            )
            result.eval_seconds = time.perf_counter() - began
            context.log.info(
                f"re-scored {result.name} on all {len(data.validation):,} validation queries: "
                f"{metric} {result.metrics[metric]:.4f} in {result.eval_seconds:.0f} s"
            )
        return result

    baseline_results = [on_all_validation(r) for r in results if r.baseline]
    for result in contenders:
        on_all_validation(result)
    # Finalists first; should none be at least as good as both baselines, the other candidates
    # in order (the grid's plain last-track rule ties that baseline).
    finalist_names = {r.name for r in contenders}
    others = [r for r in results if not r.baseline and r.name not in finalist_names]
    ranking = next_track_ranked(contenders, metric) + next_track_ranked(others, metric)
    selected, passed_over = first_meeting_baselines(
        ranking, baseline_results, GATE_METRICS, on_all_validation
    )
    for reason in passed_over:
        context.log.info(f"passed over, not at least as good as every baseline: {reason}")
    curves = {}
    for result in [selected, *baseline_results]:
        if result.name not in tops:  # the sample was all of validation: scored there already
            _, tops[result.name] = evaluate(
                result.load(storage), data.validation, popularity, METRIC_KS
            )
        curves[result.name] = hit_rate_curve(
            tops[result.name].ids, data.validation.labels, len(data.catalogue)
        )
    rows = candidate_table(results, metric, selected.name)
    plots["hit_rate_at_k"] = run_key(run_id, "plots", "validation_hit_rate_at_k.png")
    plots["validation"] = run_key(run_id, "plots", "validation.png")
    title = "validation hit rate@K: selected model and baselines"
    plot_hit_rate_curves(curves, storage.writable(plots["hit_rate_at_k"]), title)
    plot_validation_bars(rows, metric, storage.writable(plots["validation"]))
    parent = mlflow.parent_run(EXPERIMENT, context)
    client = mlflow.client()
    client.log_table(parent, data=_frame(rows), artifact_file="validation_table.json")
    for key in plots.values():
        storage.commit(key)
        client.log_artifact(parent, str(storage.writable(key)), artifact_path="plots")
    log_to_run(
        client,
        parent,
        {
            "source": next_track_dataset.source,
            "sample_percent": next_track_dataset.sample_percent,
            "split_salt": next_track_dataset.split_salt,
            "selected_candidate": selected.name,
            "selected_family": selected.family,
            "selection_metric": metric,
            "validation_queries": len(data.validation),
        },
        logged_metrics(
            selected.name,
            {"validation": {r.name: r.metrics for r in [selected, *baseline_results]}},
        ),
    )
    experiment_id = mlflow.experiment_id(EXPERIMENT)
    mine = selected.metrics
    shown_plots = {}
    for name in ("hit_rate_at_k", "reranker_feature_importance"):
        if name in plots:
            path = f"plots/{PurePosixPath(plots[name]).name}"
            shown_plots |= mlflow_plot(mlflow, experiment_id, parent, path, f"{name}_plot")
    context.add_output_metadata(
        for_display(
            {
                "selected": selected.name,
                "selection_metric": metric,
                "selection_tiebreak": tiebreak_of(metric),
                f"selected_validation_{metric}": mine[metric],
                f"selected_validation_{metric}_stderr": mine[f"{metric}_stderr"],
                **{
                    f"{b.family}_baseline_validation_{metric}": b.metrics[metric]
                    for b in baseline_results
                },
                "passed_over": dg.MetadataValue.json(passed_over),
                "second_stage_components": dg.MetadataValue.json(
                    {
                        "kept": [r.name for r in components.results],
                        "unique_label_share": [  # best family first (a list keeps the order)
                            {"candidate": name, "share": share}
                            for name, share in components.unique_shares.items()
                        ],
                    }
                ),
                "candidates_evaluated": len(results),
                "candidates_skipped": dg.MetadataValue.json(skipped),
                "validation_sample": len(sample),
                "validation_queries": len(data.validation),
                "validation": rows_table(rows),
                **shown_plots,
                "mlflow_run": dg.MetadataValue.url(mlflow.run_url(experiment_id, parent)),
                "worker": WORKER_NAME,
            }
        )
    )
    return Selection(
        metric,
        selected,
        baseline_results,
        rows,
        plots,
        len(sample),
        len(data.validation),
        config.min_validation_queries,
    )


def _frame(rows: list[dict]):
    import pandas as pd

    return pd.DataFrame(rows)


@dg.asset(
    group_name="next_track",
    kinds={"mlflow"},
    description="The selected candidate scored once on test beside the baselines (by query "
    "length too: a table and a plot), saved as the bundle the MLflow model ships (any family).",
)
def selected_model(
    context: dg.AssetExecutionContext,
    candidate_metrics: Selection,
    next_track_dataset: DatasetHandle,
    storage: RunStorage,
    mlflow: MlflowResource,
) -> SelectedModel:
    selection = candidate_metrics
    data = next_track_dataset.load(storage)
    popularity = popularity_of(data)
    test, by_length = {}, {}
    for result in [selection.selected, *selection.baselines]:
        test[result.name], top = evaluate(result.load(storage), data.test, popularity, METRIC_KS)
        by_length[result.name] = metrics_by_query_length(
            top.ids, data.test.queries.history, data.test.labels, len(data.catalogue), METRIC_KS
        )
    length_rows = query_length_rows(by_length, REPORTED_METRICS)
    length_plot = run_key(context.run.run_id, "plots", "test_by_query_length.png")
    plot_by_query_length(length_rows, "hit_rate_at_10", storage.writable(length_plot))
    storage.commit(length_plot)
    parent, client = mlflow.parent_run(EXPERIMENT, context), mlflow.client()
    client.log_table(parent, data=_frame(length_rows), artifact_file="test_by_query_length.json")
    client.log_artifact(parent, str(storage.writable(length_plot)), artifact_path="plots")
    shown_plot = mlflow_plot(
        mlflow, mlflow.experiment_id(EXPERIMENT), parent,
        f"plots/{PurePosixPath(length_plot).name}", "test_by_query_length_plot",
    )  # fmt: skip
    model = selection.selected.load(storage)
    bundle_key = run_key(context.run.run_id, "bundle")
    bundle_dir = save_bundle(
        storage.writable(bundle_key),
        model,
        data.catalogue,
        {
            "use_case": "next_track",
            "candidate": selection.selected.name,
            "data_fingerprint": next_track_dataset.fingerprint,
            "raw_fingerprint": next_track_dataset.raw_fingerprint,
            "lineage": next_track_dataset.source,
        },
    )
    storage.commit(bundle_key)
    latency = serving_latency_ms(model, 200, data.test.queries.history)
    size = bundle_bytes(bundle_dir)
    metric = selection.metric
    name = selection.selected.name
    context.log.info(f"selected {name}: test {metric} {test[name][metric]:.4f}")
    rows = candidate_table(
        [
            CandidateResult(**{**r.__dict__, "metrics": test[r.name]})
            for r in [selection.selected, *selection.baselines]
        ],
        metric,
        name,
    )
    context.add_output_metadata(
        for_display(
            {
                "candidate": name,
                f"test_{metric}": test[name][metric],
                "test_queries": len(data.test),
                "test": rows_table(rows),
                "test_by_query_length": rows_table(length_rows),
                **shown_plot,
                "bundle": storage.location(bundle_key),
                "bundle_megabytes": size / 1e6,
                "serving_latency_ms_p50": latency,
                "worker": WORKER_NAME,
            }
        )
    )
    return SelectedModel(
        candidate=name,
        family=selection.selected.family,
        metric=metric,
        bundle_key=bundle_key,
        validation={r.name: r.metrics for r in [selection.selected, *selection.baselines]},
        test=test,
        params=selection.selected.params,
        bundle_bytes=size,
        latency_ms_p50=latency,
    )
