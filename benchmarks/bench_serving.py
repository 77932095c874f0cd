"""HTTP latency and throughput of a registered next-track model served as `make serve` serves it.
Not a test:

    python benchmarks/bench_serving.py [--model models:/next-track@champion] [--clients 1 4 16]
        [--seconds 20] [--workers 1] [--tracks 3] [--connections per-client]

The server (`python -m orchestration.serve_model`, the command behind `make serve`) starts on a
free port of 127.0.0.1 with ``--workers`` uvicorn workers; once it answers, each client count
runs for ``--seconds``: every client sends requests of ``--tracks`` catalogue tracks (drawn with
a fixed seed among the most played thousand, so most are known to the model) one after another,
on one kept-alive connection of its own (``--connections per-client``, as connection pools and
load generators such as wrk send) or on a new connection each (``per-request``, urllib's way,
the only way before 2026-12-07: it adds a connection and an accept to every request).
Prints JSON: per client count, requests answered, requests/s, and latency p50/p90/p99 in ms; and
the server's peak RSS, summed over its processes (`make serve` and its workers).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from peak_memory import PeakMemory, process_tree  # noqa: E402

from orchestration.serve_model import server_environment  # noqa: E402

# What the JSON records of the server's environment: the numeric threads each worker runs.
THREAD_SETTINGS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT")
READY_SECONDS = 600


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request_bodies(model: str, tracks: int, n: int) -> list[bytes]:
    import mlflow

    folder = mlflow.artifacts.download_artifacts(f"{model}/artifacts/bundle/catalogue.parquet")
    table = pq.read_table(folder, columns=["key", "train_count"])
    order = np.argsort(-table.column("train_count").to_numpy(), kind="stable")[:1000]
    keys = table.column("key").take(order).to_pylist()
    draw = random.Random(0)
    return [
        json.dumps({"dataframe_records": [{"tracks": draw.sample(keys, tracks)}]}).encode()
        for _ in range(n)
    ]


def post(url: str, body: bytes) -> float:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
    return (time.perf_counter() - started) * 1000


class KeptAliveClient:
    """One HTTP/1.1 connection, reused for every request."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, path: str, body: bytes) -> float:
        started = time.perf_counter()
        self.connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        return (time.perf_counter() - started) * 1000


def load(port: int, bodies: list[bytes], clients: int, seconds: float, connections: str) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    url = f"http://127.0.0.1:{port}/invocations"

    def client(offset: int) -> None:
        mine, i = [], offset
        kept = KeptAliveClient(port) if connections == "per-client" else None
        while time.perf_counter() < deadline:
            body = bodies[i % len(bodies)]
            mine.append(post(url, body) if kept is None else kept.post("/invocations", body))
            i += clients
        if kept is not None:
            kept.connection.close()
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    values = np.asarray(latencies)
    return {
        "clients": clients,
        "connections": connections,
        "requests": len(values),
        "requests_per_second": round(len(values) / elapsed, 1),
        **{f"p{q}_ms": round(float(np.percentile(values, q)), 2) for q in (50, 90, 99)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="models:/next-track@champion")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--tracks", type=int, default=3)
    parser.add_argument(
        "--connections", choices=["per-client", "per-request"], default="per-client"
    )
    args = parser.parse_args()
    bodies = request_bodies(args.model, args.tracks, 2_000)
    port = free_port()
    command = [sys.executable, "-m", "orchestration.serve_model", "--model", args.model]
    command += ["--port", str(port), "--workers", str(args.workers)]
    server_log = Path(tempfile.mkdtemp(prefix="bench-serving-")) / "server.log"
    with server_log.open("w") as log:
        server = subprocess.Popen(
            command, cwd=REPO_ROOT, start_new_session=True, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    memory = PeakMemory({"server": lambda: process_tree(server.pid)[0]})
    memory.start()
    try:
        started = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.perf_counter() - started > READY_SECONDS or server.poll() is not None:
                said = server_log.read_text(errors="replace").strip().splitlines()
                raise SystemExit(
                    "the server did not come up; the end of its output "
                    f"({server_log}):\n  " + "\n  ".join(said[-10:])
                )
            time.sleep(1)
        ready_seconds = time.perf_counter() - started
        for body in bodies[:50]:  # warm up every worker's first requests
            post(f"{url}/invocations", body)
        results = [
            load(port, bodies, clients, args.seconds, args.connections) for clients in args.clients
        ]
    finally:
        memory.stopping.set()
        memory.join()
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
    print(
        json.dumps(
            {
                "model": args.model,
                "workers": args.workers,
                "server_threads": {
                    name: value
                    for name, value in server_environment(
                        args.workers, dict(os.environ), os.cpu_count() or 1
                    ).items()
                    if name in THREAD_SETTINGS
                },
                "tracks_per_request": args.tracks,
                "seconds_to_ready": round(ready_seconds, 1),
                # The sum over the server's processes (the workers each load the model).
                "server_peak_rss_mib": memory.peaks_mib()["server"],
                "load": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
