"""The Makefile's servers and settings as a user meets them: `make serve` and `make mlflow-ui`
stop, children and all, when only `make` is signalled; `make serve` says which version it
serves; the UIs link to each other on the ports they are started on."""

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from orchestration.foreground import GRACE_SECONDS
from tests.servers import free_port, wait_for_http

REPO_ROOT = Path(__file__).resolve().parents[1]


def session_process_table(session: int) -> dict[int, tuple[int, str]]:
    """pid -> (process group, command line) of the live (not zombie) processes of a session."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = stat.with_name("cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            found[int(stat.parent.name)] = (int(fields[2]), cmdline)
    return found


def session_processes(session: int) -> list[str]:
    """Command lines of the live (not zombie) processes of a session."""
    return [cmdline for _, cmdline in session_process_table(session).values()]


def kill_session(session: int) -> None:
    """SIGKILL to every process group of the session: the server runs in a group of its own."""
    for group in {group for group, _ in session_process_table(session).values()}:
        with contextlib.suppress(ProcessLookupError):  # gone since it was listed
            os.killpg(group, signal.SIGKILL)


def port_is_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_links_follow_the_ports_the_uis_are_started_on():
    unset = {"NEXT_TRACK_MLFLOW_UI", "NEXT_TRACK_DAGSTER_UI"}  # unset, not empty, for ?=
    env = {k: v for k, v in os.environ.items() if k not in unset}
    run = subprocess.run
    base = ["make", "-s", "-C", str(REPO_ROOT)]

    def show(variable: str, *args: str) -> str:
        """What the Makefile exports to its recipes (--eval adds a throw-away target)."""
        target = f"--eval=show: ; @echo $${variable}"
        done = run([*base, target, "show", *args], capture_output=True, text=True, env=env)
        return done.stdout.strip()

    assert show("NEXT_TRACK_MLFLOW_UI", "MLFLOW_PORT=5123") == "http://127.0.0.1:5123"
    assert show("NEXT_TRACK_DAGSTER_UI", "PORT=3123") == "http://127.0.0.1:3123"
    assert show("NEXT_TRACK_MLFLOW_UI") == "http://127.0.0.1:5000"
    dry_run = run([*base, "-n", "mlflow-ui", "MLFLOW_PORT=5123"], capture_output=True, text=True)
    assert "-p 5123" in dry_run.stdout
    dry_run = run([*base, "-n", "ui", "PORT=3123"], capture_output=True, text=True)
    assert "dg dev --host 127.0.0.1 --port 3123" in dry_run.stdout
    # A shared MLflow server named in the environment wins over the local default.
    env["NEXT_TRACK_MLFLOW_UI"] = "https://mlflow.example.org"
    assert show("NEXT_TRACK_MLFLOW_UI", "MLFLOW_PORT=5123") == "https://mlflow.example.org"


def start_make(target: str, port: int, log: Path, extra: list[str]) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            ["make", "-C", str(REPO_ROOT), target, *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=default_stop_signals,
        )


def default_stop_signals() -> None:
    """make starts as from a shell: INT and TERM at their defaults. Ignored dispositions are
    inherited, and the in-process Dagster runs earlier in the session may leave them ignored."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("target", "signum"),
    # Both targets run their server through the same wrapper; SIGINT to make alone is the case
    # make itself does not pass on, so each target is tried with it.
    [
        ("serve", signal.SIGTERM),
        ("serve", signal.SIGINT),
        ("mlflow-ui", signal.SIGINT),
        ("mlflow-ui", signal.SIGTERM),
    ],
    ids=["serve-TERM", "serve-INT", "mlflow-ui-INT", "mlflow-ui-TERM"],
)
def test_server_stops_with_make(target, signum, tiny_registered_model, tmp_path):
    port = free_port()
    if target == "serve":
        model = f"models:/{tiny_registered_model['name']}@champion"
        extra, ready = [f"MODEL={model}", f"SERVE_PORT={port}"], "ping"
    else:
        extra, ready = [f"MLFLOW_PORT={port}"], "health"
    log = tmp_path / f"make-{target}.log"
    process = start_make(target, port, log, extra)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/{ready}", process, log)
        running = session_processes(process.pid)
        assert len(running) >= 3, running  # make, the wrapper, the server and its children
        if target == "mlflow-ui":
            # make, the foreground wrapper, the `mlflow ui` CLI and one uvicorn worker: no
            # worker pool, no huey job consumers (17 processes and 2.4 GiB before).
            assert len(running) == 4, running
            assert not any("huey" in command for command in running), running
        if target == "serve":  # the alias resolved once: the version printed is the one served
            served = f"models:/{tiny_registered_model['name']}/{tiny_registered_model['version']}"
            assert any(f"serve -m {served} " in command for command in running), running
        process.send_signal(signum)  # make's pid only, as a supervisor or IDE does
        signalled = time.monotonic()
        process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while session_processes(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert session_processes(process.pid) == [], log.read_text()[-2000:]
        assert not port_is_open(port)
        # Stopped by the signal itself: the wrapper's SIGKILL comes only after its grace time,
        # and says so.
        assert time.monotonic() - signalled < GRACE_SECONDS, log.read_text()[-2000:]
        assert "killed (SIGKILL)" not in log.read_text()
    finally:
        kill_session(process.pid)
    if target == "serve":
        said = next(line for line in log.read_text().splitlines() if line.startswith("serving"))
        version = tiny_registered_model["version"]
        assert said.startswith(f"serving next-track-tiny version {version} (@champion; ")
        assert "sequential_rules:tiny" in said and f"from {model}" in said


def test_serve_names_a_model_it_cannot_find(tiny_registered_model):
    model = f"models:/{tiny_registered_model['name']}@no-such-alias"
    port = free_port()
    done = subprocess.run(
        ["make", "-s", "-C", str(REPO_ROOT), "serve", f"MODEL={model}", f"SERVE_PORT={port}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert f"cannot serve {model}: " in done.stderr and "no-such-alias" in done.stderr
    assert "Traceback" not in done.stderr
