"""The dead-run check: a run whose worker is gone is failed; a queued run whose worker started
long after the run was created, and is still starting, is left alone."""

import subprocess
import sys
import time

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

from orchestration.run_health import fail_dead_runs


def test_a_slow_starting_queued_run_is_not_taken_for_dead(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        run = instance.add_run(
            DagsterRun(job_name="next_track_pipeline", status=DagsterRunStatus.STARTING)
        )
        time.sleep(2.5)  # queued: the launcher starts the worker well after the run was created
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            time.sleep(0.5)
            instance.report_engine_event(f"Started process for run (pid: {worker.pid}).", run)
            assert fail_dead_runs(instance, log=lambda _: None) == []
            assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTING
            worker.kill()
            worker.wait()
            assert fail_dead_runs(instance, log=lambda _: None) == [run.run_id]
            assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
        finally:
            worker.kill()
