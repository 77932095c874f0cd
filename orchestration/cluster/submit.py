"""`make run PROFILE=cluster`: the source uploaded to the bucket, the run submitted to the
cluster's Dagster webserver (queued, then launched by its daemon; steps on the Celery workers),
and followed from the instance's event log with the same console lines as an embedded run."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRun

from orchestration.cluster.state import ClusterState
from orchestration.console import progress_line, progress_shown, progress_text

LOCATION = "next_track"
POLL_SECONDS = 1.0
FAILURE_EVENTS = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.ASSET_CHECK_EVALUATION}


def submit(state: ClusterState, job_name: str, run_config: dict) -> str:
    """The run's id, once the webserver has queued it."""
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=state.ports["dagster"])
    return client.submit_job_execution(
        job_name, repository_location_name=LOCATION, run_config=run_config
    )


def follow(
    instance: dg.DagsterInstance,
    run_id: str,
    threshold: int,
    where: str,
    out: TextIO = sys.stderr,
) -> DagsterRun:
    """Print the run's progress as its events arrive, until it has ended; the finished run.
    ``where``: the run's page in the cluster's Dagster UI."""
    cursor = None
    while True:
        connection = instance.get_records_for_run(run_id, cursor=cursor, limit=1_000)
        for record in connection.records:
            entry = record.event_log_entry
            event, message = entry.dagster_event, entry.user_message
            if progress_shown(event, entry.level, message, threshold):
                text = progress_text(event, entry.step_key, message, run_id, where)
                print(progress_line(entry.timestamp, entry.level, text), file=out, flush=True)
        cursor = connection.cursor
        if connection.records:
            continue
        run = instance.get_run_by_id(run_id)
        if run is not None and run.is_finished:
            return run
        time.sleep(POLL_SECONDS)


def failure_events(instance: dg.DagsterInstance, run_id: str) -> list[dg.DagsterEvent]:
    records = instance.get_records_for_run(run_id, of_type=FAILURE_EVENTS).records
    return [r.event_log_entry.dagster_event for r in records if r.event_log_entry.dagster_event]


def log_level(name: str) -> int:
    level = logging.getLevelName(name.upper())
    return level if isinstance(level, int) else logging.INFO
