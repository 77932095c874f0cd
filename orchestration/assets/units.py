"""What a grid unit of either use case reports once it has scored its variants: each result as
a finished child run of the pipeline's MLflow run, and the step's metadata."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from ml.evaluation.candidates import CandidateResult, CandidateSpec
from ml.recommenders.base import EpochCallback
from ml.registry import log_child_run
from orchestration.metadata import for_display, rows_table
from orchestration.resources import MlflowResource
from orchestration.settings import WORKER_NAME


def unit_tags(context: dg.OpExecutionContext, spec: CandidateSpec, fingerprint: str) -> dict:
    return {
        "family": spec.family,
        "unit": spec.unit_name,
        "dagster_run_id": context.run.run_id,
        "data_fingerprint": fingerprint,
        "worker": WORKER_NAME,
    }


def log_unit_runs(
    context: dg.OpExecutionContext,
    mlflow: MlflowResource,
    experiment: str,
    spec: CandidateSpec,
    results: list[CandidateResult],
    fingerprint: str,
    catalogue_size: int,
    rung_share: float | None = None,
) -> None:
    """Each result as a finished child run of the pipeline's run: its params, validation
    metrics and timings; at a rung (``rung_share`` of train) named and tagged as such."""
    parent = mlflow.parent_run(experiment, context)
    experiment_id = mlflow.experiment_id(experiment)
    client = mlflow.client()
    at_rung = {} if rung_share is None else {"rung_share": rung_share}
    for result in results:
        kind = "rung" if at_rung else ("baseline" if result.baseline else "candidate")
        log_child_run(
            client,
            experiment_id,
            parent,
            f"{result.name} (rung: {rung_share:.0%} of train)" if at_rung else result.name,
            {"family": result.family, **result.params, **at_rung},
            {
                **{f"validation_{k}": v for k, v in result.metrics.items()},
                "fit_seconds": result.fit_seconds,
                "eval_seconds": result.eval_seconds,
                "catalogue_size": float(catalogue_size),
                **result.facts,
            },
            {"kind": kind, **unit_tags(context, spec, fingerprint)},
        )


def unit_metadata(
    results: list[CandidateResult], rows: list[dict], best_of: str, facts: dict
) -> dict:
    """A unit step's metadata: its results' count, fit seconds, best ``best_of`` and table, then
    ``facts``."""
    return for_display(
        {
            "candidates": len(results),
            "fit_seconds": results[0].fit_seconds,
            **facts,
            f"best_validation_{best_of}": max(r.metrics[best_of] for r in results),
            "validation": rows_table(rows),
            "worker": WORKER_NAME,
        }
    )


@contextmanager
def epoch_run(
    context: dg.OpExecutionContext,
    mlflow: MlflowResource,
    experiment: str,
    spec: CandidateSpec,
    fingerprint: str,
) -> Iterator[EpochCallback]:
    """An MLflow run of the unit's training, nested in the pipeline's: the callback logs each
    epoch's validation figures; FAILED if the fit raises."""
    client = mlflow.client()
    tags = {"mlflow.parentRunId": mlflow.parent_run(experiment, context), "kind": "training"}
    run = client.create_run(
        mlflow.experiment_id(experiment),
        run_name=f"{spec.unit_name} (training)",
        tags={**tags, **unit_tags(context, spec, fingerprint)},
    )

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            client.log_metric(run.info.run_id, f"validation_{key}", value, step=epoch)

    try:
        yield on_epoch
    except BaseException:
        client.set_terminated(run.info.run_id, status="FAILED")
        raise
    client.set_terminated(run.info.run_id)
