"""The same pipeline run embedded and on the cluster profile: wall seconds of each, and the peak
RSS of each cluster service (the sum over its process group, sampled every 0.5 s). Not a test:

    python benchmarks/bench_cluster.py [--source ../shared/data/yes_small] [--runs 3]
        [--config tests/one_unit_per_family.yaml]

The cluster is brought up in a temporary folder (as `make cluster-up` does) and down at the end;
each embedded run gets a fresh data folder and DAGSTER_HOME, as a new user's `make run` would.
Runs alternate (embedded, cluster, embedded, ...) so that a busy moment of the machine falls on
both. Prints JSON: every run's seconds, their medians, and each service's peak RSS in MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from peak_memory import MIB, PeakMemory, rss_bytes  # noqa: E402

from orchestration.cluster.lifecycle import down, up  # noqa: E402
from orchestration.processes import group_members  # noqa: E402


def group_rss(pgid: int) -> int:
    return sum(rss_bytes(pid) for pid in group_members(pgid))


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", default=str(REPO_ROOT.parent / "shared/data/yes_small"))
    parser.add_argument("--config", default=str(REPO_ROOT / "tests/one_unit_per_family.yaml"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    # dagster-dbt runs `dbt` from PATH: the one beside this interpreter, as `make` sets it.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    run = [sys.executable, "-m", "orchestration.run", "--source", args.source,
           "--config", args.config]  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    folder.chmod(0o755)
    state = up(folder, workers=2)
    memory = PeakMemory({name: partial(group_rss, pgid) for name, pgid in state.pids.items()})
    memory.start()
    seconds: dict[str, list[float]] = {"embedded": [], "cluster": []}
    try:
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as embedded:
                home = Path(embedded) / "dagster_home"
                home.mkdir()
                (home / "dagster.yaml").write_text(
                    (REPO_ROOT / "dagster_home/dagster.yaml").read_text()
                )
                env = {
                    **os.environ,
                    "NEXT_TRACK_DATA_DIR": f"{embedded}/data",
                    "DAGSTER_HOME": str(home),
                    "MLFLOW_TRACKING_URI": f"sqlite:///{embedded}/data/mlflow/mlflow.db",
                }
                seconds["embedded"].append(timed(run, env))
            with tempfile.TemporaryDirectory() as submitter:
                env = {**os.environ, **state.environment(), "NEXT_TRACK_DATA_DIR": submitter}
                seconds["cluster"].append(timed([*run, "--profile", "cluster"], env))
    finally:
        memory.stopping.set()
        memory.join()
        down(folder)
    print(
        json.dumps(
            {
                "source": args.source,
                "config": args.config,
                "seconds": seconds,
                "median_seconds": {k: statistics.median(v) for k, v in seconds.items()},
                "service_peak_rss_mib": {k: round(v / MIB) for k, v in memory.peaks.items()},
                "services_peak_rss_mib_sum": round(sum(memory.peaks.values()) / MIB),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
