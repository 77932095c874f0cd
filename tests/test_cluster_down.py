"""``make cluster-down`` stops every process the cluster started, whether or not it leads a
process group of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from orchestration.cluster.lifecycle import down
from orchestration.cluster.state import ClusterState


def test_down_stops_a_stray_process_that_leads_no_group(tmp_path):
    ClusterState.new(tmp_path, workers=1).save()
    environment = {**os.environ, "NEXT_TRACK_CLUSTER_DIR": str(tmp_path)}
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    stray = subprocess.Popen(sleeper, env=environment)
    try:
        assert os.getpgid(stray.pid) != stray.pid  # in this test's group, which it does not lead
        assert down(tmp_path) == [f"stray process {stray.pid}"]
        assert stray.wait(timeout=10) == -signal.SIGTERM
    finally:
        stray.kill()
        stray.wait()


def test_down_spares_the_shell_it_runs_in(tmp_path):
    """A shell that sourced cluster.env carries the cluster's folder too; it is not stopped."""
    ClusterState.new(tmp_path, workers=1).save()
    down_here = (
        "from pathlib import Path; from orchestration.cluster.lifecycle import down; "
        f"print(down(Path({str(tmp_path)!r})))"
    )
    environment = {**os.environ, "NEXT_TRACK_CLUSTER_DIR": str(tmp_path), "DOWN": down_here}
    shell = subprocess.run(
        ["sh", "-c", f'{sys.executable} -c "$DOWN"; echo survived'],
        env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shell.stdout.split() == ["[]", "survived"], shell.stderr
