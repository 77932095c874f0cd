"""`make serve`: say which registered version is served, then serve exactly that version.

An alias (``models:/next-track@champion``) is resolved once, here: the server loads that
version and keeps serving it after the alias moves to a newer champion, until it is restarted.
The server stops with `make` (orchestration.foreground).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from ml.registry import resolve_model_version
from orchestration.foreground import run_in_foreground


def describe(version: ModelVersion) -> str:
    registered = datetime.fromtimestamp(version.creation_timestamp / 1000, UTC)
    aliases = ", ".join(f"@{alias}" for alias in version.aliases) or "no alias"
    candidate = version.tags.get("candidate", "unknown candidate")
    return (
        f"{version.name} version {version.version} ({aliases}; {candidate}; registered "
        f"{registered:%Y-%m-%d %H:%M} UTC)"
    )


NUMERIC_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# 2**4 cycles: OpenBLAS's idle threads sleep at once instead of spinning (its default, 2**28).
OPENBLAS_IDLE_SPIN = "4"


def server_environment(workers: int, environ: dict[str, str], cpus: int) -> dict[str, str]:
    """The server's environment: this interpreter's folder first on PATH (MLflow starts
    `uvicorn` by name), and every core for each worker's numeric threads (OpenMP, OpenBLAS), so
    that a lone request uses them all. With several workers, OpenBLAS's idle threads sleep at
    once: spinning, they took the cores from the other workers' requests. One worker keeps them
    spinning: there, sleeping cost more than it saved
    (docs/benchmarks.md#serving-the-full-scale-champion). What the caller set is kept."""
    scripts = Path(sys.executable).parent
    spin = {"OPENBLAS_THREAD_TIMEOUT": OPENBLAS_IDLE_SPIN} if workers > 1 else {}
    return {
        **{name: str(max(1, cpus)) for name in NUMERIC_THREADS},
        **spin,
        **environ,
        "PATH": f"{scripts}{os.pathsep}{environ.get('PATH', '')}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="models:/name@alias, models:/name/3...")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes (uvicorn workers), each a model"
    )
    args = parser.parse_args(argv)
    try:
        version = resolve_model_version(MlflowClient(), args.model)
    except MlflowException as e:  # no such model, alias or version: say so, no traceback
        print(f"cannot serve {args.model}: {e.message}", file=sys.stderr)
        return 1
    if version is None:
        served, what = args.model, args.model
    else:
        served, what = f"models:/{version.name}/{version.version}", describe(version)
    print(
        f"serving {what} from {args.model} on http://{args.host}:{args.port}/invocations\n"
        "  a newer champion is served only after a restart; a fixed version: "
        "make serve MODEL=models:/<name>/<version>",
        flush=True,
    )
    mlflow = str(Path(sys.executable).parent / "mlflow")
    command = [mlflow, "models", "serve", "-m", served, "--env-manager", "local"]
    env = server_environment(args.workers, dict(os.environ), os.cpu_count() or 1)
    return run_in_foreground(
        [*command, "-h", args.host, "-p", str(args.port), "-w", str(args.workers)], env
    )


if __name__ == "__main__":
    sys.exit(main())
