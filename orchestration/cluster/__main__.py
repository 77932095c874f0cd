"""`python -m orchestration.cluster up|down|status` (make cluster-up, make cluster-down)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from orchestration.cluster.lifecycle import down, status, up
from orchestration.cluster.state import CLUSTER_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--folder", type=Path, default=CLUSTER_DIR)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    folder = args.folder.resolve()
    if args.command == "up":
        state = up(folder, args.workers)
        print(
            f"cluster up ({folder}):\n"
            f"  Dagster UI     {state.dagster_url}\n"
            f"  MLflow UI      {state.mlflow_url}\n"
            f"  S3 (SeaweedFS) {state.s3_endpoint}  bucket next-track\n"
            f"  PostgreSQL     127.0.0.1:{state.ports['postgres']}\n"
            f"  Redis          127.0.0.1:{state.ports['redis']}\n"
            f"  workers        {', '.join(f'worker-{i}' for i in range(1, state.workers + 1))}\n"
            f"credentials and logs: {folder} (make run PROFILE=cluster submits there)"
        )
    elif args.command == "down":
        stopped = down(folder)
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    else:
        print(json.dumps(status(folder), indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("DAGSTER_HOME", str(CLUSTER_DIR / "dagster_home"))
    raise SystemExit(main())
