"""`make run`: materialize a use case's whole graph once and print what happened.

The run goes through the project's DAGSTER_HOME (it shows up in `make ui` afterwards) with the
definitions' multi-process executor, so grid units run in parallel exactly as they do from the UI.
Before starting, runs whose process was killed are marked failed, so they cannot block this one.

The terminal shows progress on stderr (orchestration/console.py: steps with seconds, the steps'
own messages, warnings, errors) and the summary on stdout (orchestration/summary.py); the full
log (engine events, dbt's line per node, the libraries' output) stays in the run, in the UI.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from dagster._core.instance.ref import InstanceRef

from orchestration.config import run_config_errors
from orchestration.project import dbt_project
from orchestration.run_health import fail_dead_runs

JOB = "next_track_pipeline"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", default="", help="file or folder; empty: synthetic data")
    parser.add_argument("--playlists", type=int, default=5_000, help="synthetic scale")
    parser.add_argument("--sample-percent", type=float, default=100.0)
    parser.add_argument(
        "--log-level", default="INFO", help="lowest level of the steps' own messages shown"
    )
    return parser.parse_args(argv)


def run_config(args: argparse.Namespace) -> dict:
    return {
        "loggers": {"progress_console": {"config": {"log_level": args.log_level}}},
        "ops": {
            "raw_playlist_events": {
                "config": {"source": args.source or None, "synthetic_playlists": args.playlists}
            },
            "next_track_dbt_models": {"config": {"sample_percent": args.sample_percent}},
        },
    }


def job_definition() -> dg.JobDefinition:
    """Rebuilt in each step process by the multi-process executor."""
    from orchestration.definitions import defs

    return defs.resolve_job_def(JOB)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    config = run_config(args)
    errors = run_config_errors(config)
    if errors:
        print("invalid run config:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 2
    # MLflow's INFO chatter (database set-up, input example validation, download progress
    # bars) is not progress; its warnings still show. Step processes inherit these.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("dbt").setLevel(logging.WARNING)
    instance = console_instance(args.log_level)
    fail_dead_runs(instance)
    started = time.perf_counter()
    with stdout_kept_in_run_logs():
        dbt_project.preparer.prepare(dbt_project)
        result = dg.execute_job(
            dg.reconstructable(job_definition), instance=instance, run_config=config
        )
    with result:
        seconds = time.perf_counter() - started
        from orchestration.summary import print_failure, print_summary

        if not result.success:
            print_failure(result)
            return 1
        print_summary(instance, result.run_id, seconds)
    return 0


def console_instance(log_level: str) -> dg.DagsterInstance:
    """The project's instance (DAGSTER_HOME) with its Python log level at ``log_level`` for this
    run: a step process announces itself (STEP_WORKER_STARTED, a DEBUG event) through Dagster's
    default console before the run's loggers exist. Every Dagster event, and the steps'
    messages at ``log_level`` and above, still reach the run's event log."""
    home = dg.DagsterInstance.get().root_directory  # validates DAGSTER_HOME
    # InstanceRef is not exported by dagster; it is how an instance gets config overrides that
    # step processes inherit (the ref travels with the run).
    ref = InstanceRef.from_dir(home, overrides={"python_logs": {"python_log_level": log_level}})
    return dg.DagsterInstance.from_ref(ref)


@contextmanager
def stdout_kept_in_run_logs() -> Iterator[None]:
    """What steps print to stdout (dbt's line per node, library output) stays in the run's
    captured logs (UI: the step's stdout) and off this terminal: step processes inherit file
    descriptor 1, and Dagster mirrors what it captures to it."""
    sys.stdout.flush()
    terminal = os.dup(1)
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(terminal, 1)
        os.close(terminal)


if __name__ == "__main__":
    raise SystemExit(main())
