"""Runs whose process is gone are marked failed, and their pool slots freed.

A run killed with ``kill -9`` stays STARTED forever in Dagster's storage and keeps its slot in the
one-slot warehouse pool, so every later run waits for ever. Dagster's own run monitoring cannot
see it with the default (local) run launcher, which has no worker health check; every run's event
log does record its worker process id, though, so a run on this machine whose worker is gone (or
whose id now belongs to a younger process) is dead. The check runs in a sensor (under
`dagster dev` / the daemon) and before `make run` starts its run. The sensor also ends the MLflow
runs such a run left RUNNING (the next registration does too).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import dagster as dg
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

from ml.registry import end_orphaned_runs
from orchestration.processes import alive, started_at
from orchestration.resources import MlflowResource

PID_PATTERN = re.compile(r"\(pid: (\d+)\)")
ALIVE_STATUSES = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.CANCELING]


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The process that executes the run (the first engine event naming a pid) and when that
    event was written: the process existed by then."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20
    ).records
    for record in records:
        match = PID_PATTERN.search(record.event_log_entry.message or "")
        if match:
            return int(match.group(1)), record.event_log_entry.timestamp
    return None


def process_started_after(pid: int, timestamp: float) -> bool | None:
    """Whether process ``pid`` is alive but younger than ``timestamp`` (its id was reused);
    None when it does not exist."""
    if not alive(pid):
        return None
    started = started_at(pid)
    return started is None or started > timestamp + 1.0


def fail_dead_runs(instance: dg.DagsterInstance, log: Callable[[str], None] = print) -> list[str]:
    """Mark every in-progress run whose worker process is gone as failed; free its slots.

    Only with Dagster's default run launcher, whose run workers are processes of the machine
    that launches them (`make run`, or the daemon next to its code server): the run worker is the
    one process judged, never a step on a Celery worker. A remote launcher's run workers (pods)
    are another machine's processes: their health is Dagster run monitoring's to check."""
    if not isinstance(instance.run_launcher, DefaultRunLauncher):
        return []
    failed = []
    for record in instance.get_run_records(filters=RunsFilter(statuses=ALIVE_STATUSES)):
        run = record.dagster_run
        worker = worker_pid(instance, run.run_id)
        if worker is None:
            continue  # not started far enough to name its process: Dagster's own timeouts apply
        # Not the run's creation or start time: a queued run's worker starts long after the
        # run was created, and a run still STARTING has no start time.
        pid, named_at = worker
        younger = process_started_after(pid, named_at)
        if younger is False:
            continue  # still running
        reason = (
            f"run worker process {pid} is gone (killed?)"
            if younger is None
            else f"process id {pid} now belongs to another process"
        )
        instance.report_run_failed(run, f"Marked failed: {reason}; its pool slots were freed.")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        log(f"run {run.run_id} ({run.job_name}) marked failed: {reason}")
        failed.append(run.run_id)
    return failed


def run_is_live(instance: dg.DagsterInstance, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id)
    return run is not None and not run.is_finished


def runs_in_progress(instance: dg.DagsterInstance) -> set[str]:
    return {run.run_id for run in instance.get_runs(filters=RunsFilter(statuses=ALIVE_STATUSES))}


def end_orphaned_mlflow_runs(
    instance: dg.DagsterInstance, mlflow: MlflowResource, log: Callable[[str], None] = print
) -> list[str]:
    """MLflow runs left RUNNING by Dagster runs that are over (killed mid-registration, or failed
    before registering), in any experiment, are ended as FAILED. Creates no MLflow store."""
    experiment_ids = mlflow.experiment_ids()
    if not experiment_ids:
        return []
    ended = end_orphaned_runs(
        mlflow.client(), experiment_ids, lambda run_id: run_is_live(instance, run_id)
    )
    if ended:
        log(f"ended {len(ended)} MLflow runs of finished Dagster runs as FAILED: {ended}")
    return ended


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks runs whose process was killed as failed and frees their pool slots, so a "
    "killed run never blocks the platform; ends the MLflow runs they left RUNNING as FAILED.",
)
def dead_run_sensor(context: dg.SensorEvaluationContext, mlflow: MlflowResource):
    failed = fail_dead_runs(context.instance, context.log.warning)
    ended = end_orphaned_mlflow_runs(context.instance, mlflow, context.log.warning)
    return dg.SkipReason(
        f"marked {len(failed)} dead runs failed, ended {len(ended)} orphaned MLflow runs"
        if failed or ended
        else "no dead runs"
    )
