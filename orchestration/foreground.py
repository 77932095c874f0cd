"""Run a server in the foreground of `make` and stop all of it when `make` is stopped:
``python -m orchestration.foreground COMMAND...`` (what `make serve` and `make mlflow-ui` do).

Without it, SIGTERM to `make` ends only the shell of the recipe, and `mlflow models serve` (a
CLI that starts uvicorn) or `mlflow ui` keeps listening as an orphan; SIGINT to `make` alone is
not passed on at all (GNU make waits for its recipe, expecting the terminal to have signalled
the whole process group). So the command runs in a process group of its own, and the group is
stopped when this process gets INT, TERM or HUP, when `make` is handling one of them (it blocks
the signal while it waits for its recipe), or when `make` is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_SECONDS = 10.0


def parent_is_stopping(parent: int) -> bool:
    """True when the parent is a GNU make inside its fatal-signal handler: it then blocks that
    signal and waits for us. Linux (/proc) only; elsewhere only forwarded signals count."""
    proc = Path("/proc", str(parent))
    try:
        if proc.joinpath("comm").read_text().strip() not in {"make", "gmake"}:
            return False
        status = proc.joinpath("status").read_text()
    except OSError:
        return False
    blocked = next(
        int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigBlk:")
    )
    return any(blocked & (1 << (int(s) - 1)) for s in STOP_SIGNALS)


def stop_group(process: subprocess.Popen, signum: int) -> None:
    """``signum`` to the whole group, then SIGKILL to whatever is left after the grace time."""
    deadline = time.monotonic() + GRACE_SECONDS
    try:
        os.killpg(process.pid, signum)
        while time.monotonic() < deadline:
            process.poll()  # reap the leader, or the group never looks empty
            os.killpg(process.pid, 0)
            time.sleep(0.1)
        # Said on the console: a server that needs this has a shutdown to fix.
        print(
            f"{process.args[0]} did not stop within {GRACE_SECONDS:.0f} s of signal {signum}: "
            "killed (SIGKILL)",
            file=sys.stderr,
        )
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the group is empty
    process.wait()


def run_in_foreground(command: list[str], env: dict[str, str] | None = None) -> int:
    """Run ``command`` (in ``env``, else ours) until it exits or we are told to stop; returns
    its exit code."""
    received: list[int] = []
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda number, _frame: received.append(number))
    parent = os.getppid()
    process = subprocess.Popen(command, process_group=0, env=env)
    while process.poll() is None:
        if not received and (os.getppid() != parent or parent_is_stopping(parent)):
            received.append(signal.SIGTERM)
        if received:
            stop_group(process, received[0])
            break
        time.sleep(0.2)
    else:
        stop_group(process, signal.SIGTERM)  # children the command left behind
    return process.returncode if process.returncode >= 0 else 128 - process.returncode


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(f"usage: python -m {__spec__.name} COMMAND [ARGS...]")
    sys.exit(run_in_foreground(sys.argv[1:]))
