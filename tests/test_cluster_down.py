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
