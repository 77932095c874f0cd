"""What both use cases' selection assets hand over and report: the candidates the grid fitted,
the selection (validation) and the selected model (test, its bundle), logged to the pipeline's
MLflow run and shown as the asset's metadata."""

from dataclasses import dataclass, field

import dagster as dg
import pandas as pd

from ml.evaluation.candidates import CandidateResult
from ml.evaluation.selection import EvidenceFloor, baseline_gate
from ml.registry import log_to_run
from orchestration.assets.grid import UnitOutcome
from orchestration.assets.registration import logged_metrics
from orchestration.metadata import for_display, mlflow_plot, rows_table
from orchestration.resources import MlflowResource
from orchestration.settings import WORKER_NAME
from orchestration.storage import RunStorage
from orchestration.use_case import UseCase


@dataclass(kw_only=True)
class Selection:
    metric: str  # the validation metric it was selected on
    tiebreak: str  # the metric that breaks ties on it
    selected: CandidateResult
    baselines: list[CandidateResult]
    rows: list[dict]  # the validation table
    plots: dict[str, str]  # name -> PNG in the run store
    validation_sample: int
    validation_queries: int
    min_validation_queries: int  # the gate's floor
    gate_metrics: tuple[str, ...]  # the selected model may not lose to a baseline on these
    ties_pass: bool  # whether a tie with a baseline passes the gate


@dataclass(kw_only=True)
class SelectedModel:
    candidate: str
    family: str
    metric: str  # the validation metric it was selected on
    bundle_key: str  # the bundle's folder in the run store
    validation: dict[str, dict[str, float]]  # name -> metrics (selected and baselines)
    test: dict[str, dict[str, float]]
    params: dict
    bundle_bytes: int
    facts: dict[str, float] = field(default_factory=dict)  # logged as metrics beside test's


@dataclass(frozen=True)
class GridResults:
    """Every result the grid's units handed over, and the units skipped with why."""

    results: list[CandidateResult]
    skipped: dict[str, str]

    @classmethod
    def of(cls, outcomes: list[UnitOutcome]) -> "GridResults":
        """Raises dg.Failure, naming each unit's reason, when no candidate (baselines aside)
        could fit."""
        results = [r for o in outcomes for r in o.results]
        skipped = {o.unit: o.skipped for o in outcomes if o.skipped}
        if not any(not r.baseline for r in results):
            raise dg.Failure(
                "no candidate could fit: "
                + ("; ".join(f"{u}: {why}" for u, why in skipped.items()) or "the grid is empty"),
                allow_retries=False,
            )
        return cls(results, skipped)


@dataclass(frozen=True, kw_only=True)
class SelectionReport:
    """What a selection asset logs to the pipeline's MLflow run and shows."""

    experiment: str
    params: dict  # the pipeline run's params (data lineage, the selection)
    selection: Selection
    shown_plots: tuple[str, ...]  # the plots shown in the asset's metadata, by name
    metadata: dict  # the asset's own metadata, shown after the selection's figures


def report_selection(
    context: dg.AssetExecutionContext,
    report: SelectionReport,
    mlflow: MlflowResource,
    storage: RunStorage,
) -> None:
    """The validation table and plots logged to the pipeline's MLflow run with the selected
    model's and the baselines' validation metrics, and the asset's metadata."""
    selection = report.selection
    parent = mlflow.parent_run(report.experiment, context)
    client = mlflow.client()
    client.log_table(
        parent, data=pd.DataFrame(selection.rows), artifact_file="validation_table.json"
    )
    for key in selection.plots.values():
        storage.commit(key)
        client.log_artifact(parent, str(storage.writable(key)), artifact_path="plots")
    figures = {r.name: r.metrics for r in [selection.selected, *selection.baselines]}
    log_to_run(
        client,
        parent,
        report.params,
        logged_metrics(selection.selected.name, {"validation": figures}),
    )
    experiment_id = mlflow.experiment_id(report.experiment)
    plots = {}
    for name in report.shown_plots:
        if name in selection.plots:
            path = f"plots/{selection.plots[name].rsplit('/', 1)[-1]}"
            plots |= mlflow_plot(mlflow, experiment_id, parent, path, f"{name}_plot")
    metric = selection.metric
    context.add_output_metadata(
        for_display(
            {
                "selected": selection.selected.name,
                "selection_metric": metric,
                "selection_tiebreak": selection.tiebreak,
                f"selected_validation_{metric}": selection.selected.metrics[metric],
                **{
                    f"{b.family}_baseline_validation_{metric}": b.metrics[metric]
                    for b in selection.baselines
                },
                **report.metadata,
                "validation": rows_table(selection.rows),
                **plots,
                "mlflow_run": dg.MetadataValue.url(mlflow.run_url(experiment_id, parent)),
                "worker": WORKER_NAME,
            }
        )
    )


def tested(selection: Selection, test: dict[str, dict[str, float]]) -> list[CandidateResult]:
    """The selected model and the baselines with their test metrics, for a test table."""
    return [
        CandidateResult(**{**r.__dict__, "metrics": test[r.name]})
        for r in [selection.selected, *selection.baselines]
    ]


def selected_model(
    selection: Selection,
    test: dict[str, dict[str, float]],
    bundle_key: str,
    size: int,
    facts: dict[str, float],
    params: dict | None = None,
) -> SelectedModel:
    """The hand-over of the selected model: ``params`` are what it was fitted with (the
    selected candidate's when None)."""
    chosen = selection.selected
    return SelectedModel(
        candidate=chosen.name,
        family=chosen.family,
        metric=selection.metric,
        bundle_key=bundle_key,
        validation={r.name: r.metrics for r in [chosen, *selection.baselines]},
        test=test,
        params=chosen.params if params is None else params,
        bundle_bytes=size,
        facts=facts,
    )


def log_plotted_table(
    context: dg.AssetExecutionContext,
    mlflow: MlflowResource,
    storage: RunStorage,
    experiment: str,
    plot_key: str,
    rows: list[dict],
) -> dict:
    """A table and its plot (written at ``plot_key``) logged to the pipeline's MLflow run under
    the plot's name; the plot's metadata to show it."""
    storage.commit(plot_key)
    name = plot_key.rsplit("/", 1)[-1].removesuffix(".png")
    parent, client = mlflow.parent_run(experiment, context), mlflow.client()
    client.log_table(parent, data=pd.DataFrame(rows), artifact_file=f"{name}.json")
    client.log_artifact(parent, str(storage.writable(plot_key)), artifact_path="plots")
    experiment_id = mlflow.experiment_id(experiment)
    return mlflow_plot(mlflow, experiment_id, parent, f"plots/{name}.png", f"{name}_plot")


def report_selected(
    context: dg.AssetExecutionContext,
    selected: SelectedModel,
    rows: list[dict],
    storage: RunStorage,
    metadata: dict,
    logged: tuple[str, ...] = (),
) -> None:
    """The selected model's test figure logged (with the ``logged`` ones), and its metadata:
    the test table, the bundle and ``metadata``."""
    name, metric = selected.candidate, selected.metric
    figures = ", ".join(f"{m} {selected.test[name][m]:.4f}" for m in (metric, *logged))
    context.log.info(f"selected {name}: test {figures}")
    context.add_output_metadata(
        for_display(
            {
                "candidate": name,
                f"test_{metric}": selected.test[name][metric],
                **metadata,
                "test": rows_table(rows),
                "bundle": storage.location(selected.bundle_key),
                "bundle_megabytes": selected.bundle_bytes / 1e6,
                "worker": WORKER_NAME,
            }
        )
    )


def baseline_gate_check(use_case: UseCase) -> dg.AssetChecksDefinition:
    """The blocking gate on the use case's selection: the selected model must be at least as
    good as every baseline on validation at each of the selection's gate metrics (a tie passes
    if the selection says so), on at least its minimum number of validation queries. A model
    that does not is never registered: a baseline that wins is reported, not deployed."""
    asset = use_case.asset_key("candidate_metrics")
    noun = use_case.query_noun

    @dg.asset_check(asset=asset, name="beats_baselines", blocking=True)
    def beats_baselines(selection: Selection) -> dg.AssetCheckResult:
        """The selected model is at least as good as every baseline on validation at each gate
        metric; the description names each metric it fails and against which baseline."""
        setting = f"{asset.to_user_string()}.config.min_validation_{noun}"
        floor = EvidenceFloor(selection.min_validation_queries, f"validation {noun}", setting)
        selected = selection.selected
        gate = baseline_gate(
            selected, selection.baselines, selection.gate_metrics, floor, selection.ties_pass
        )
        metrics = selection.gate_metrics
        figures = {f"selected_validation_{m}": selected.metrics[m] for m in metrics}
        for baseline in selection.baselines:
            figures |= {
                f"{baseline.family}_baseline_validation_{m}": baseline.metrics[m] for m in metrics
            }
        return dg.AssetCheckResult(
            passed=gate.passed,
            metadata=for_display(
                {f"validation_{noun}": int(selected.metrics["queries"]), **figures}
            ),
            description=gate.description,
        )

    return beats_baselines
