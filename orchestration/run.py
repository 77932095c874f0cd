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
import multiprocessing
import multiprocessing.forkserver
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import yaml

from ml.sources import SourceError
from orchestration.config import RawSourceConfig, run_config_errors
from orchestration.instance import open_instance
from orchestration.project import prepare
from orchestration.run_health import fail_dead_runs
from orchestration.settings import PROFILE, STEP_PRELOAD_MODULES
from orchestration.storage import RunStorage

JOBS = {"next_track": "next_track_pipeline", "user_items": "user_items_pipeline"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", default="", help="file or folder; empty: synthetic data")
    parser.add_argument("--playlists", type=int, default=5_000, help="synthetic scale")
    parser.add_argument("--sample-percent", type=float, default=100.0)
    parser.add_argument(
        "--log-level", default="INFO", help="lowest level of the steps' own messages shown"
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="a YAML run config (as the launchpad takes) whose ops' config is laid over these "
        "flags': a grid of your own, say",
    )
    parser.add_argument(
        "--profile",
        choices=["embedded", "cluster"],
        default="embedded",
        help="cluster: submit to the services of `make cluster-up` (the environment of its "
        "cluster.env); embedded: run here",
    )
    parser.add_argument(
        "--use-case",
        choices=["auto", *JOBS],
        default="auto",
        help="auto: user_items for interactions (MovieLens, u.data), next_track otherwise",
    )
    return parser.parse_args(argv)


def use_case_of(args: argparse.Namespace) -> str:
    if args.use_case != "auto":
        return args.use_case
    if not args.source:
        return "next_track"
    from ml.sources.interactions import detect_interactions_format

    source = Path(args.source).expanduser()
    try:
        fmt = detect_interactions_format(source, None)
    except (SourceError, OSError):
        return "next_track"
    return "user_items" if fmt.value in ("recbole", "grouplens") else "next_track"


def run_config(args: argparse.Namespace, use_case: str) -> dict:
    if use_case == "user_items":
        ops = {
            "raw_interactions": {"config": {"source": args.source or None}},
            "user_items_dbt_models": {
                "config": {"interactions_sample_percent": args.sample_percent}
            },
        }
    else:
        ops = {
            "raw_playlist_events": {
                "config": {"source": args.source or None, "synthetic_playlists": args.playlists}
            },
            "next_track_dbt_models": {"config": {"sample_percent": args.sample_percent}},
        }
    config_file = getattr(args, "config", None)
    for op, settings in (read_config_file(config_file) if config_file else {}).items():
        ops.setdefault(op, {}).setdefault("config", {}).update(settings.get("config") or {})
    return {"loggers": {"progress_console": {"config": {"log_level": args.log_level}}}, "ops": ops}


def source_description(use_case: str, ops: dict) -> str:
    """What the run ingests, as the console's first line names it (from the final run config,
    a --config file's included)."""
    if use_case == "user_items":
        source = ops["raw_interactions"]["config"].get("source")
        return source or "the published playlist rows as interactions"
    raw = RawSourceConfig(**ops["raw_playlist_events"]["config"])
    chosen = raw.source_or_default()
    if chosen:
        return chosen if raw.source else f"{chosen} ($NEXT_TRACK_SOURCE)"
    return f"synthetic generator, {raw.synthetic_playlists:,} playlists, seed {raw.synthetic_seed}"


def read_config_file(path: Path) -> dict:
    """The ``ops`` of a YAML run config file; what is wrong with it is named."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise SystemExit(f"cannot read run config {path}: {e}") from None
    ops = document.get("ops") if isinstance(document, dict) else None
    if not isinstance(ops, dict):
        raise SystemExit(f"run config {path}: expected a mapping with 'ops', as Dagster's")
    return ops


def next_track_job() -> dg.JobDefinition:
    """Rebuilt in each step process by the multi-process executor."""
    from orchestration.definitions import defs

    return defs.resolve_job_def(JOBS["next_track"])


def user_items_job() -> dg.JobDefinition:
    from orchestration.definitions import defs

    return defs.resolve_job_def(JOBS["user_items"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    use_case = use_case_of(args)
    config = run_config(args, use_case)
    errors = run_config_errors(config)
    if errors:
        print("invalid run config:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 2
    # MLflow's INFO chatter (database set-up, input example validation, download progress
    # bars) is not progress; its warnings still show. Step processes inherit these.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("dbt").setLevel(logging.WARNING)
    if args.profile == "cluster":
        return run_on_cluster(args, use_case, config)
    instance = open_instance(python_log_level=args.log_level)
    fail_dead_runs(instance)
    job = next_track_job if use_case == "next_track" else user_items_job
    source = source_description(use_case, config["ops"])
    print(f"running {JOBS[use_case]} (source: {source})", flush=True)
    started = time.perf_counter()
    with stdout_kept_in_run_logs():
        prepare()  # before the forkserver imports the definitions, which read the manifest
        start_step_forkserver()
        result = dg.execute_job(dg.reconstructable(job), instance=instance, run_config=config)
    with result:
        seconds = time.perf_counter() - started
        from orchestration.summary import print_failure, print_summary

        if not result.success:
            print_failure(result.all_events)
            return 1
        print_summary(instance, result.run_id, seconds, RunStorage())
    return 0


def start_step_forkserver() -> None:
    """The forkserver the multi-process executor forks step processes from, started now: it
    imports the definitions while this process loads the job, not after. The executor finds it
    running (multiprocessing keeps one per process). It inherits this process's environment and
    file descriptors as they are now, as it would when the executor started it."""
    if PROFILE == "cluster":  # steps are Celery tasks
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["dagster._core.executor.multiprocess", *STEP_PRELOAD_MODULES])
    multiprocessing.forkserver.ensure_running()


def run_on_cluster(args: argparse.Namespace, use_case: str, config: dict) -> int:
    """Submit to the cluster (the source uploaded to its bucket first), follow, summarise. The
    cluster's daemon judges its own dead runs: this machine may not see their processes."""
    from orchestration.cluster.state import ClusterState
    from orchestration.cluster.submit import failure_events, follow, log_level, submit
    from orchestration.settings import PROFILE
    from orchestration.summary import print_failure, print_summary

    if PROFILE != "cluster":
        print("--profile cluster needs the cluster's environment: make run PROFILE=cluster")
        return 2
    state, storage = ClusterState.load(), RunStorage()
    ops = config["ops"]
    source_op = "raw_playlist_events" if use_case == "next_track" else "raw_interactions"
    if args.source:
        url = storage.upload_source(Path(args.source).expanduser().resolve())
        ops[source_op]["config"]["source"] = url
        print(f"uploaded {args.source} to {url}", flush=True)
    started = time.perf_counter()
    # Workers' loggers write to their own logs: this console reads the event log instead.
    run_id = submit(state, JOBS[use_case], {"ops": ops})
    page = f"{state.dagster_url}/runs/{run_id}"
    print(f"submitted {JOBS[use_case]}: {page}", flush=True)
    instance = dg.DagsterInstance.get()
    run = follow(instance, run_id, log_level(args.log_level), page)
    seconds = time.perf_counter() - started
    if run.status != dg.DagsterRunStatus.SUCCESS:
        print_failure(failure_events(instance, run_id))
        print(
            f"run {run_id} {run.status.value.lower()} (its log: {state.dagster_url}/runs/{run_id})"
        )
        return 1
    print_summary(instance, run_id, seconds, storage, f"{state.dagster_url}/runs/{run_id}")
    return 0


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
