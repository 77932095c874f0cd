"""`make run` in a process of its own, for the fault tests to kill or overlap.

Like ``python -m orchestration.run``: the instance is opened as it opens it, dead runs are marked
failed first, then the next-track job runs on the instance, data folder and MLflow store the
environment names, with its console log. Unlike it, the steps run in this one process (a
process per step re-imports everything, tens of seconds each on a busy machine) on the small test
grid; the run is tagged ``fault_test=<name>`` so a test finds it, and ``--pause-in-registration``
holds the run once the model version exists (before its alias is set), for a test to kill it
there.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tests.configs import SMALL_GRID

TAG = "fault_test"  # imported by the tests: this module loads the project only in main()


def pause_after_version_created(marker: Path) -> None:
    """Once the model version exists (its MLflow run still RUNNING, no alias yet), write
    ``marker`` and wait to be killed."""
    from mlflow import MlflowClient

    create_model_version = MlflowClient.create_model_version

    def create_model_version_then_wait(self, *args, **kwargs):
        version = create_model_version(self, *args, **kwargs)
        marker.write_text(str(version.version))
        time.sleep(3600)
        return version

    MlflowClient.create_model_version = create_model_version_then_wait


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True, help="value of the run's fault_test tag")
    parser.add_argument("--source", default="", help="file or folder; empty: synthetic data")
    parser.add_argument("--playlists", type=int, default=400)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--pause-in-registration", type=Path, metavar="MARKER", default=None)
    args = parser.parse_args(argv)
    from orchestration.definitions import defs
    from orchestration.instance import open_instance
    from orchestration.run import JOBS, run_config
    from orchestration.run_health import fail_dead_runs

    if args.pause_in_registration:
        pause_after_version_created(args.pause_in_registration)

    config = run_config(
        argparse.Namespace(
            source=args.source, playlists=args.playlists, sample_percent=100.0, log_level="INFO"
        ),
        "next_track",
    )
    config["ops"]["raw_playlist_events"]["config"]["synthetic_seed"] = args.seed
    config["ops"].update(SMALL_GRID)
    instance = open_instance()
    fail_dead_runs(instance)
    result = defs.resolve_job_def(JOBS["next_track"]).execute_in_process(
        run_config=config, instance=instance, tags={TAG: args.name}, raise_on_error=False
    )
    print(f"RUN {result.run_id} {'SUCCESS' if result.success else 'FAILURE'}", flush=True)
    return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
