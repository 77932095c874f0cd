"""What `make cluster-up` decided and every process of the cluster needs: the state folder,
ports, generated credentials, and the environment they turn into."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR = Path(os.environ.get("NEXT_TRACK_CLUSTER_DIR", REPO_ROOT / ".cluster")).resolve()
STATE_FILE = "state.json"
ENV_FILE = "cluster.env"
BUCKET = "next-track"
DATABASE_USER = "nexttrack"
SERVICES = ("postgres", "redis", "seaweedfs", "mlflow", "dagster_daemon", "dagster_webserver")


def free_ports(
    names: tuple[str, ...], offset_names: tuple[str, ...], offset: int
) -> dict[str, int]:
    """Distinct ports free on 127.0.0.1 now, one per name; each of ``offset_names`` also has
    ``port + offset`` free and distinct (SeaweedFS serves gRPC there).

    Drawn below the kernel's ephemeral range: the services start one after another over tens of
    seconds, and a port from that range can be taken meanwhile by any outgoing connection (or
    handed out again by the kernel, as two ``bind(0)`` probes once were)."""
    ceiling = ephemeral_range_start()
    taken: set[int] = set()
    chosen: dict[str, int] = {}
    for name in (*offset_names, *names):
        width = offset if name in offset_names else 0
        while True:
            port = secrets.randbelow(ceiling - width - 10_000) + 10_000
            wanted = {port, port + width}
            if not wanted & taken and all(port_is_free(each) for each in wanted):
                break
        taken |= wanted
        chosen[name] = port
    return chosen


def ephemeral_range_start() -> int:
    """The first port the kernel hands out for ``bind(0)`` and outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class ClusterState:
    folder: str
    workers: int
    ports: dict[str, int]
    postgres_password: str
    redis_password: str
    s3_access_key: str
    s3_secret_key: str
    pids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def new(cls, folder: Path, workers: int) -> ClusterState:
        """Free ports now; the credentials of the state already in ``folder`` (its databases and
        bucket were made with them), else new ones."""
        previous = (
            json.loads((folder / STATE_FILE).read_text()) if (folder / STATE_FILE).exists() else {}
        )
        # SeaweedFS listens on each of its ports and on port + 10000 (gRPC).
        ports = free_ports(
            ("postgres", "redis", "mlflow", "dagster"),
            tuple(f"seaweedfs_{name}" for name in ("s3", "master", "volume", "filer", "admin")),
            offset=10_000,
        )
        return cls(
            folder=str(folder),
            workers=workers,
            ports=ports,
            postgres_password=previous.get("postgres_password") or secrets.token_urlsafe(24),
            redis_password=secrets.token_urlsafe(24),
            s3_access_key=previous.get("s3_access_key") or "NT" + secrets.token_hex(9).upper(),
            s3_secret_key=previous.get("s3_secret_key") or secrets.token_urlsafe(30),
        )

    @classmethod
    def load(cls, folder: Path = CLUSTER_DIR) -> ClusterState:
        path = folder / STATE_FILE
        if not path.exists():
            raise SystemExit(f"no cluster state at {path}: run `make cluster-up` first")
        return cls(**json.loads(path.read_text()))

    def save(self) -> None:
        path = Path(self.folder) / STATE_FILE
        write_private(path, json.dumps(asdict(self), indent=2))
        env = "".join(f"{k}={shlex.quote(v)}\n" for k, v in self.environment().items())
        write_private(Path(self.folder) / ENV_FILE, env)

    # Addresses
    def database_url(self, database: str) -> str:
        return (
            f"postgresql://{DATABASE_USER}:{self.postgres_password}@127.0.0.1:"
            f"{self.ports['postgres']}/{database}"
        )

    def redis_url(self, db: int) -> str:
        return f"redis://:{self.redis_password}@127.0.0.1:{self.ports['redis']}/{db}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['seaweedfs_s3']}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['mlflow']}"

    @property
    def dagster_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['dagster']}"

    @property
    def dagster_home(self) -> Path:
        return Path(self.folder) / "dagster_home"

    def environment(self) -> dict[str, str]:
        """What every process of the cluster (and `make run PROFILE=cluster`) runs with."""
        return {
            "NEXT_TRACK_PROFILE": "cluster",
            "NEXT_TRACK_CLUSTER_DIR": self.folder,
            "DAGSTER_HOME": str(self.dagster_home),
            "NEXT_TRACK_STORAGE_URL": f"s3://{BUCKET}",
            "AWS_ENDPOINT_URL": self.s3_endpoint,
            "AWS_ACCESS_KEY_ID": self.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": self.s3_secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLFLOW_S3_ENDPOINT_URL": self.s3_endpoint,
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            # New experiments take the server's artifact store: the bucket, through the server.
            "NEXT_TRACK_MLFLOW_ARTIFACTS": "",
            "NEXT_TRACK_MLFLOW_UI": self.mlflow_url,
            "NEXT_TRACK_DAGSTER_UI": self.dagster_url,
            "NEXT_TRACK_CELERY_BROKER": self.redis_url(0),
            "NEXT_TRACK_CELERY_BACKEND": self.redis_url(1),
            "NEXT_TRACK_LOCK_DATABASE": self.database_url("dagster"),
            "NEXT_TRACK_PG_PORT": str(self.ports["postgres"]),
            "NEXT_TRACK_PG_PASSWORD": self.postgres_password,
        }


def write_private(path: Path, text: str) -> None:
    """A file only its owner can read: it holds the cluster's credentials."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
