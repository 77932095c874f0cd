"""Bring the cluster up and down, and say what runs."""

from __future__ import annotations

import signal
from pathlib import Path

from orchestration.cluster import services
from orchestration.cluster.state import STATE_FILE, ClusterState
from orchestration.processes import alive

# Stopped in this order: nothing is left waiting on a service already gone.
STOP_ORDER = ["dagster_webserver", "dagster_daemon", "mlflow", "seaweedfs", "redis", "postgres"]


def up(folder: Path, workers: int) -> ClusterState:
    if (folder / STATE_FILE).exists():
        running = {n: p for n, p in ClusterState.load(folder).pids.items() if alive(p)}
        if running:
            raise SystemExit(
                f"the cluster in {folder} is already up ({', '.join(running)}): "
                "make cluster-down first"
            )
    folder.mkdir(parents=True, exist_ok=True)
    state = ClusterState.new(folder, workers)
    state.save()
    try:
        services.start_postgres(state)
        services.start_redis(state)
        services.start_seaweedfs(state)
        services.write_dagster_home(state)
        services.init_dagster_storage(state)
        services.start_mlflow(state)
        services.start_dagster(state)
        services.start_workers(state)
    except BaseException:
        down(folder)
        raise
    return state


def down(folder: Path) -> list[str]:
    """Stop every process the cluster started: each recorded group (workers first), then any
    process still carrying this cluster's folder in its environment."""
    if not (folder / STATE_FILE).exists():
        return []
    state = ClusterState.load(folder)
    names = sorted(
        state.pids, key=lambda n: (n in STOP_ORDER, STOP_ORDER.index(n) if n in STOP_ORDER else 0)
    )
    for name in names:
        # PostgreSQL's fast shutdown is SIGINT (SIGTERM waits for every client to leave).
        first = signal.SIGINT if name == "postgres" else signal.SIGTERM
        services.stop_group(state.pids[name], first)
    leftovers = services.processes_of(state.folder)
    services.stop_processes(leftovers, state.folder)
    stopped = list(names)
    state.pids = {}
    state.save()
    return stopped + [f"stray process {pid}" for pid in leftovers]


def status(folder: Path) -> dict:
    state = ClusterState.load(folder)
    return {
        "processes": {name: {"pid": pid, "alive": alive(pid)} for name, pid in state.pids.items()},
        "dagster": state.dagster_url,
        "mlflow": state.mlflow_url,
        "s3": state.s3_endpoint,
    }
