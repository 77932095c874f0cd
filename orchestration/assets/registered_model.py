"""The registration asset of a use case: the selected bundle logged as an MLflow pyfunc,
registered, and promoted champion or challenger with the reason written on the version."""

from pathlib import Path

import dagster as dg

from ml.evaluation.report import markdown_description
from ml.registry import LoggedModel, log_and_register, log_to_run, training_dataset
from orchestration.assets.registration import (
    RegisteredModel,
    Registration,
    baseline_name,
    compare_with_champion,
    end_orphans,
    logged_metrics,
    promote_and_report,
    selected_tags,
)
from orchestration.assets.selection import SelectedModel, Selection
from orchestration.resources import MlflowResource
from orchestration.settings import REGISTRY_POOL
from orchestration.storage import RunStorage
from orchestration.use_case import DatasetFacts, UseCase


def version_description(
    selected: SelectedModel, selection: Selection, reason: str, reported: tuple[str, ...]
) -> str:
    """A headline (what it was selected and gated on, why its alias) and one row per model, the
    selected one and the baselines: its validation selection metric and the ``reported`` test
    figures."""
    metric = selection.metric
    gate = "at least as good as" if selection.ties_pass else "better than"
    count = len(selected.test) - 1
    baselines = {1: "the baseline", 2: "both baselines"}.get(count, f"all {count} baselines")
    headline = (
        f"{selected.candidate} ({selected.family}), selected on validation {metric} "
        f"({selection.tiebreak} breaking ties) among {len(selection.rows)} candidates and "
        f"baselines, {gate} {baselines} on validation {', '.join(selection.gate_metrics)}. "
        f"Promotion: {reason}."
    )
    if "refit_seconds" in selected.facts:
        headline += " Test: each model refit on train + validation first."
    rows = [
        {
            "model": name,
            f"validation {metric}": selected.validation[name][metric],
            **{f"test {m}": test[m] for m in reported},
        }
        for name, test in selected.test.items()
    ]
    return markdown_description(headline, rows)


def logged_model(
    use_case: UseCase,
    selected: SelectedModel,
    selection: Selection,
    tags: dict[str, str],
    dataset: DatasetFacts,
    storage: RunStorage,
) -> LoggedModel:
    bundle_dir = storage.stage(selected.bundle_key)
    metrics = logged_metrics(
        selected.candidate, {"test": selected.test, "validation": selected.validation}
    )
    return LoggedModel(
        card=use_case.model_card(selection.metric),
        pyfunc_file=Path(use_case.pyfunc.__file__),
        bundle_dir=bundle_dir,
        signature=use_case.pyfunc.SIGNATURE,
        example_input=use_case.pyfunc.example_input(bundle_dir),
        run_name=f"selected: {selected.candidate}",
        params={"family": selected.family, **selected.params},
        metrics={**metrics, "bundle_megabytes": selected.bundle_bytes / 1e6, **selected.facts},
        tags=tags,
        artifacts=[storage.stage(key) for key in selection.plots.values()],
        training_data=training_dataset(
            use_case.training_table, storage.uri(dataset.warehouse_key), dataset.fingerprint
        ),
    )


def version_tags(
    use_case: UseCase, selected: SelectedModel, tags: dict[str, str]
) -> dict[str, str]:
    """The run's tags (but its kind) and the promotion figure, the baselines' too when the use
    case tags them."""
    metric = use_case.promotion_metric
    baselines = {n: v for n, v in selected.test.items() if n != selected.candidate}
    return {
        **{k: v for k, v in tags.items() if k != "kind"},
        f"test_{metric}": f"{selected.test[selected.candidate][metric]:.6f}",
        **{
            f"test_{baseline_name(n)}_{metric}": f"{v[metric]:.6f}"
            for n, v in baselines.items()
            if use_case.tag_baselines
        },
    }


def registered_model_asset(use_case: UseCase, dataset_type: type) -> dg.AssetsDefinition:
    """``<use case>_registered_model``: champion if there is none, if the data lineage changed,
    or if it beats the champion's test figure re-scored on this split; else challenger."""
    metric = use_case.promotion_metric

    @dg.asset(
        name=use_case.asset_key("registered_model").path[-1],
        ins={
            "selected": dg.AssetIn(use_case.asset_key("selected_model")),
            "selection": dg.AssetIn(use_case.asset_key("candidate_metrics")),
            "dataset": dg.AssetIn(use_case.asset_key("dataset")),
        },
        kinds={"mlflow"},
        pool=REGISTRY_POOL,
        description=f"The selected model logged as an MLflow pyfunc and registered as "
        f"{use_case.model_name}; champion if there is none, if the data lineage changed, or if "
        f"it beats the champion's test {metric} on this split; otherwise challenger.",
    )
    def registered_model(
        context: dg.AssetExecutionContext,
        selected: SelectedModel,
        selection: Selection,
        dataset: dataset_type,
        mlflow: MlflowResource,
        storage: RunStorage,
    ) -> RegisteredModel:
        experiment_id = mlflow.experiment_id(use_case.experiment)
        client = mlflow.client()
        end_orphans(context, client, experiment_id)
        score = selected.test[selected.candidate][metric]
        comparison = compare_with_champion(
            client,
            use_case.model_name,
            dataset.source,
            score,
            lambda champion: use_case.rescore(champion, dataset, storage),
        )
        fingerprints = use_case.fingerprints(dataset)
        tags = selected_tags(
            context, selected.family, selected.candidate, dataset.source, fingerprints
        )
        parent = mlflow.parent_run(use_case.experiment, context)
        log_to_run(client, parent, {}, logged_metrics(selected.candidate, {"test": selected.test}))
        model = logged_model(use_case, selected, selection, tags, dataset, storage)
        run_id, version = log_and_register(client, experiment_id, parent, model)
        reason = comparison.promotion.reason
        description = version_description(selected, selection, reason, use_case.reported_metrics)
        client.update_model_version(use_case.model_name, version, description)
        registration = Registration(
            use_case.model_name, version, run_id, parent, experiment_id, comparison, metric, score
        )
        tags = version_tags(use_case, selected, tags)
        return promote_and_report(
            context, registration, tags, dataset.warehouse_key, mlflow, storage
        )

    return registered_model
