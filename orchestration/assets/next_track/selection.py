"""Selection on validation across families (with their second stage), then the winner scored
once on test beside the baselines and saved as the bundle MLflow ships."""

import dagster as dg

from ml.datasets.next_track import NextTrackData
from ml.evaluation.next_track_selection import (
    PLOT_FILES,
    NextTrackSelection,
    SecondStage,
    TestFigures,
    score_on_test,
    select_next_track,
)
from ml.evaluation.selection import GATE_METRICS, candidate_table, tiebreak_of
from ml.serving.bundle import bundle_bytes, save_bundle, serving_latency_ms
from orchestration.assets.grid import UnitOutcome
from orchestration.assets.next_track.candidates import (
    EXPERIMENT,
    neighbourhood_candidates,
    next_track_baseline_candidates,
    sequential_rules_candidates,
    slist_candidates,
    track_embeddings,
)
from orchestration.assets.next_track.dataset import DatasetHandle
from orchestration.assets.selection import (
    GridResults,
    SelectedModel,
    Selection,
    SelectionReport,
    log_plotted_table,
    report_selected,
    report_selection,
    selected_model,
    tested,
)
from orchestration.config import SelectedModelConfig, SelectionConfig
from orchestration.metadata import rows_table
from orchestration.resources import MlflowResource
from orchestration.storage import RunStorage, run_key


@dg.asset(
    ins={
        "word2vec": dg.AssetIn(track_embeddings.key),
        "sequential_rules": dg.AssetIn(sequential_rules_candidates.key),
        "neighbourhood": dg.AssetIn(neighbourhood_candidates.key),
        "slist": dg.AssetIn(slist_candidates.key),
        "baselines": dg.AssetIn(next_track_baseline_candidates.key),
    },
    kinds={"mlflow"},
    description="Every candidate and baseline on validation, a reranker and a hybrid of each "
    "family's best, the finalists re-scored on the finalist sample (unless one finalist leads "
    "every baseline on the validation sample by over two standard errors), and the winner: "
    "the table and the hit rate@K plot that say why it won (selected on the run config's "
    "metric, NDCG@10 by default).",
)
def next_track_candidate_metrics(
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
    dataset, run_id = next_track_dataset, context.run.run_id
    grid = GridResults.of([*word2vec, *sequential_rules, *neighbourhood, *slist, *baselines])
    data, sample_rows = dataset.selection_data(dataset.load(storage))
    chosen = select_next_track(
        grid.results,
        data,
        sample_rows,
        metric=config.metric,
        second_stage=second_stage(config),
        store=storage,
        key=lambda name: run_key(run_id, "candidates", name),
        plot_path=lambda name: storage.writable(run_key(run_id, "plots", PLOT_FILES[name])),
        log=context.log.info,
    )
    report = selection_report(dataset, config, chosen, grid, run_id)
    report_selection(context, report, mlflow, storage)
    return report.selection


def selection_report(
    dataset: DatasetHandle,
    config: SelectionConfig,
    chosen: NextTrackSelection,
    grid: GridResults,
    run_id: str,
) -> SelectionReport:
    """The hand-over of the selection, and what it logs and shows."""
    metric, selected = config.metric, chosen.selected
    validation_queries = dataset.validation_queries
    selection = Selection(
        metric=metric,
        tiebreak=tiebreak_of(metric),
        selected=selected,
        baselines=chosen.baselines,
        rows=chosen.rows,
        plots={name: run_key(run_id, "plots", PLOT_FILES[name]) for name in chosen.plots},
        validation_sample=dataset.validation_sample,
        validation_queries=validation_queries,
        min_validation_queries=config.min_validation_queries,
        gate_metrics=GATE_METRICS,
        ties_pass=True,
    )
    return SelectionReport(
        experiment=EXPERIMENT,
        params={
            "source": dataset.source,
            "sample_percent": dataset.sample_percent,
            "split_salt": dataset.split_salt,
            "selected_candidate": selected.name,
            "selected_family": selected.family,
            "selection_metric": metric,
            "validation_queries": validation_queries,
        },
        selection=selection,
        shown_plots=("hit_rate_at_k", "reranker_feature_importance"),
        metadata={
            f"selected_validation_{metric}_stderr": selected.metrics[f"{metric}_stderr"],
            "passed_over": dg.MetadataValue.json(chosen.passed_over),
            "second_stage_components": dg.MetadataValue.json(chosen.components),
            "candidates_evaluated": len(chosen.results),
            "candidates_skipped": dg.MetadataValue.json(grid.skipped),
            "validation_sample": dataset.validation_sample,
            "finalist_sample": dataset.finalist_sample or validation_queries,
            "finalists_measured_on": chosen.measured_on,
            "sample_decided": chosen.sample_decided,
            "validation_queries": validation_queries,
        },
    )


def second_stage(config: SelectionConfig) -> SecondStage:
    return SecondStage(
        hybrid=config.hybrid,
        hybrid_depth=config.hybrid_depth,
        reranker=config.reranker,
        reranker_depth=config.reranker_depth,
        min_unique_share=config.min_unique_share,
        finalists=config.finalists,
        min_queries=config.min_validation_queries,
    )


@dg.asset(kinds={"mlflow"})
def next_track_selected_model(
    context: dg.AssetExecutionContext,
    config: SelectedModelConfig,
    next_track_candidate_metrics: Selection,
    next_track_dataset: DatasetHandle,
    storage: RunStorage,
    mlflow: MlflowResource,
) -> SelectedModel:
    """The selected candidate and the baselines refit on train + validation (the run config's
    choice) and scored once on test (by query length too: a table and a plot); the selected one
    saved as the bundle the MLflow model ships (any family)."""
    selection, dataset = next_track_candidate_metrics, next_track_dataset
    data = dataset.load(storage)
    length_plot = run_key(context.run.run_id, "plots", "test_by_query_length.png")
    test = score_on_test(
        [selection.selected, *selection.baselines],
        data,
        storage,
        storage.writable(length_plot),
        refit=config.refit,
        log=context.log.info,
    )
    selected = saved_bundle(selection, dataset, data, test, storage, context.run.run_id)
    rows = candidate_table(tested(selection, test.metrics), selection.metric, selected.candidate)
    shown_plot = log_plotted_table(
        context, mlflow, storage, EXPERIMENT, length_plot, test.by_query_length
    )
    metadata = {"test_queries": len(data.test), **shown_plot, **test.refit}
    metadata |= {"test_by_query_length": rows_table(test.by_query_length)}
    metadata |= {"serving_latency_ms_p50": selected.facts["latency_ms_p50"]}
    report_selected(context, selected, rows, storage, metadata)
    return selected


def saved_bundle(
    selection: Selection,
    dataset: DatasetHandle,
    data: NextTrackData,
    test: TestFigures,
    storage: RunStorage,
    run_id: str,
) -> SelectedModel:
    """The selected model as scored on test, saved as the bundle the MLflow model ships (any
    family), with its size and in-process serving latency."""
    model = test.selected
    bundle_key = run_key(run_id, "bundle")
    facts = {"use_case": "next_track", "candidate": selection.selected.name}
    facts |= {"lineage": dataset.source, "refit_on_validation": bool(test.refit)}
    facts |= {"data_fingerprint": dataset.fingerprint, "raw_fingerprint": dataset.raw_fingerprint}
    bundle = save_bundle(storage.writable(bundle_key), model, data.catalogue, facts)
    storage.commit(bundle_key)
    latency = serving_latency_ms(model, 200, data.test.queries.history)
    facts = {"latency_ms_p50": latency, **test.refit}
    return selected_model(selection, test.metrics, bundle_key, bundle_bytes(bundle), facts)
