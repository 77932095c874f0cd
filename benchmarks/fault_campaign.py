"""Fault campaign on the real `make run` path: `kill -9` of a run's process group during ingest,
dbt, training and registration, the run after each, and two runs at once. Not a test (a run per
step process takes minutes on a busy machine): `python benchmarks/fault_campaign.py`.

    python benchmarks/fault_campaign.py [--playlists 400] [--big-playlists 100000] [--keep-data]

Every run is ``orchestration.run.main`` (the code `make run` runs: the instance opened under its
lock, dead runs failed first, the job on the multi-process executor, a process per step) with
the tests' small grid merged into its run config, on a fresh DAGSTER_HOME (the project's
dagster.yaml: one-slot pools), data folder and MLflow store under
``$NEXT_TRACK_DATA_DIR/fault-campaign/``. Each case prints what it checked, pass or FAIL, and its
seconds; the table is saved as ``fault_campaign.json`` there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.configs import SMALL_GRID  # noqa: E402

MODEL = "next-track"
TABLES = ["playlist_splits", "dim_tracks", "dataset_stats", "next_track_build"]
POLL_SECONDS = 0.1


@dataclass
class Case:
    name: str
    checks: dict[str, bool] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(self.checks.values())


class Campaign:
    def __init__(self, root: Path, playlists: int):
        self.root, self.playlists = root, playlists
        self.home, self.data = root / "dagster_home", root / "data"
        self.home.mkdir(parents=True)
        shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", self.home / "dagster.yaml")
        self.mlflow_uri = f"sqlite:///{self.data}/mlflow/mlflow.db"
        self.env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DAGSTER_HOME": str(self.home),
            "NEXT_TRACK_DATA_DIR": str(self.data),
            "MLFLOW_TRACKING_URI": self.mlflow_uri,
        }

    def start(self, name: str, playlists: int | None = None) -> subprocess.Popen:
        """`make run` with the small grid, in its own process group; output in <name>.log."""
        with (self.root / f"{name}.log").open("w") as log:
            return subprocess.Popen(
                [sys.executable, __file__, "--as-run", "--playlists",
                 str(playlists or self.playlists)],
                cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def instance(self):
        import dagster as dg

        return dg.DagsterInstance.from_config(str(self.home))

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(self.mlflow_uri)

    def newest_run_id(self, after: set[str]) -> str | None:
        with self.instance() as instance:
            new = [r.run_id for r in instance.get_runs() if r.run_id not in after]
        return new[0] if new else None

    def run_ids(self) -> set[str]:
        with self.instance() as instance:
            return {r.run_id for r in instance.get_runs()}

    def step_started(self, run_id: str, step_prefix: str) -> bool:
        import dagster as dg

        with self.instance() as instance:
            records = instance.get_records_for_run(
                run_id, of_type=dg.DagsterEventType.STEP_START
            ).records
        return any((r.event_log_entry.step_key or "").startswith(step_prefix) for r in records)

    def status(self, run_id: str) -> str:
        with self.instance() as instance:
            return instance.get_run_by_id(run_id).status.value

    def pool_holders(self) -> set[str]:
        with self.instance() as instance:
            storage = instance.event_log_storage
            return {
                run
                for pool in ("duckdb_warehouse", "model_registry")
                for run in storage.get_concurrency_info(pool).active_run_ids
            }

    def tables(self) -> dict:
        from ml.warehouse import read_table_rows

        warehouse = self.data / "warehouse.duckdb"
        return {t: sorted(map(repr, read_table_rows(warehouse, t))) for t in TABLES}

    def versions(self) -> list:
        from mlflow.exceptions import MlflowException

        try:
            return self.client().search_model_versions(f"name='{MODEL}'")
        except MlflowException:
            return []


def wait(
    condition: Callable[[], bool], timeout: float, process: subprocess.Popen | None = None
) -> bool:
    """Poll until ``condition`` (True), the process exits or the timeout (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (process is None or process.poll() is None):
        if condition():
            return True
        time.sleep(POLL_SECONDS)
    return condition()


def kill_tree(pid: int) -> None:
    """`kill -9` of a process and every process below it (a run worker, its steps, dbt)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    tree, index = [pid], 0
    while index < len(tree):
        tree += children.get(tree[index], [])
        index += 1
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


def kill_group(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def kill_when(
    campaign: Campaign, name: str, reached: Callable[[str], bool], timeout: float, **start
) -> tuple[str | None, bool]:
    """Start a run, `kill -9` its process group once ``reached(run id)``; the run's id and
    whether that point was reached (else it was killed on the timeout or had exited)."""
    before = campaign.run_ids()
    process = campaign.start(name, **start)
    run_id = None

    def at_point() -> bool:
        nonlocal run_id
        run_id = run_id or campaign.newest_run_id(before)
        return run_id is not None and reached(run_id)

    seen = wait(at_point, timeout, process)
    if process.poll() is None:
        kill_group(process)
    return run_id, seen


def run_campaign(campaign: Campaign, big_playlists: int) -> list[Case]:
    cases = []
    runs = campaign.data / "runs"

    case = Case("baseline run")
    started = time.monotonic()
    case.checks["succeeds"] = campaign.start("baseline").wait() == 0
    case.seconds = time.monotonic() - started
    cases.append(case)
    good_tables = campaign.tables()

    # A big synthetic source keeps the ingest's temporary file open long enough to be seen.
    case = Case("kill -9 during ingest")
    temporaries = ".playlist_events.parquet.*.tmp"
    killed_in_ingest, case.checks["temporary seen"] = kill_when(
        campaign,
        "kill_ingest",
        lambda run: any((runs / run / "raw").glob(temporaries)),
        900,
        playlists=big_playlists,
    )
    stale = list(runs.glob(f"*/raw/{temporaries}"))
    case.checks["temporary left behind"] = len(stale) == 1
    cases.append(case)

    case = Case("kill -9 during dbt")
    killed_in_dbt, case.checks["build file seen"] = kill_when(
        campaign, "kill_dbt", lambda run: (runs / run / "warehouse.duckdb").exists(), 900
    )
    case.checks["published tables unchanged"] = campaign.tables() == good_tables
    case.checks["its pool slot still held"] = killed_in_dbt in campaign.pool_holders()
    cases.append(case)

    # The next run starts by failing the run killed in dbt, which frees its slot.
    case = Case("kill -9 during training")
    killed_in_training, case.checks["fit step seen"] = kill_when(
        campaign,
        "kill_training",
        lambda run: campaign.step_started(run, "track_embeddings."),
        1800,
    )
    case.checks["run killed in dbt marked FAILURE"] = campaign.status(killed_in_dbt) == "FAILURE"
    cases.append(case)

    # Killed as soon as the new version exists: the alias is set last, a second or so later.
    case = Case("kill -9 during registration")
    versions = len(campaign.versions())
    killed_in_registration, version_made = kill_when(
        campaign, "kill_registration", lambda run: len(campaign.versions()) > versions, 1800
    )
    case.notes.append(f"killed {'after' if version_made else 'before'} the version was created")
    newest = max(campaign.versions(), key=lambda v: int(v.version), default=None)
    case.checks["no alias on a half-logged version"] = (
        not version_made or newest is None or not newest.aliases
    )
    cases.append(case)

    case = Case("next run after the kills")
    started = time.monotonic()
    case.checks["succeeds"] = campaign.start("recovery").wait() == 0
    case.seconds = time.monotonic() - started
    killed = {
        "ingest": killed_in_ingest,
        "training": killed_in_training,
        "registration": killed_in_registration,
    }
    for step, run_id in killed.items():
        case.checks[f"run killed in {step} marked FAILURE"] = campaign.status(run_id) == "FAILURE"
    case.checks["no pool slot held"] = not campaign.pool_holders()
    case.checks["stale temporary removed"] = not any(p.exists() for p in stale)
    running = [
        r.info.run_id
        for r in campaign.client().search_runs(
            [campaign.client().get_experiment_by_name(MODEL).experiment_id],
            "attributes.status = 'RUNNING'",
        )
    ]
    case.checks["no MLflow run left RUNNING"] = not running
    cases.append(case)

    case = Case("two runs at once, different data")
    before = campaign.run_ids()
    started = time.monotonic()
    first = campaign.start("overlap_a", campaign.playlists)
    second = campaign.start("overlap_b", campaign.playlists + 50)
    codes = [first.wait(), second.wait()]
    case.seconds = time.monotonic() - started
    case.checks["both succeed"] = codes == [0, 0]
    case.checks["lineage and fingerprints are each run's own"] = own_lineage(
        campaign, campaign.run_ids() - before
    )
    waits = sum("blocked by limit for pool" in campaign.log(n) for n in ("overlap_a", "overlap_b"))
    case.notes.append(f"{waits} of the 2 consoles show a pool wait")
    cases.append(case)
    return cases


def ui_case(campaign: Campaign) -> Case:
    """Under `dagster dev`: a UI run's process tree killed during dbt, then another UI run,
    queued behind the dead one (one run at a time) until the dead-run sensor fails it."""
    from orchestration.run_health import worker_pid
    from tests.graphql_client import materialize_all, run_status
    from tests.servers import free_port, server

    case = Case("UI: run killed in dbt, next run")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        "env", "--default-signal=INT,TERM", str(Path(sys.executable).parent / "dagster"), "dev",
        "-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    config = {
        "ops": {
            "raw_playlist_events": {"config": {"synthetic_playlists": campaign.playlists}},
            **SMALL_GRID,
        }
    }
    runs = campaign.data / "runs"
    with server(command, f"{url}/server_info", campaign.root / "dagster_dev.log", campaign.env):
        killed = materialize_all(url, config)
        case.checks["build file seen"] = wait(
            lambda: (runs / killed / "warehouse.duckdb").exists(), 1800
        )
        with campaign.instance() as instance:
            kill_tree(worker_pid(instance, killed))
        killed_at = time.monotonic()
        second = materialize_all(url, config)
        case.checks["killed run marked FAILURE"] = wait(
            lambda: run_status(url, killed) == "FAILURE", 300
        )
        case.notes.append(f"marked FAILURE {time.monotonic() - killed_at:.0f} s after the kill")
        finished = ("SUCCESS", "FAILURE", "CANCELED")
        wait(lambda: run_status(url, second) in finished, 3600)
        case.seconds = time.monotonic() - killed_at
        case.checks["next run succeeds"] = run_status(url, second) == "SUCCESS"
    return case


def own_lineage(campaign: Campaign, run_ids: set[str]) -> bool:
    """Each run's registered version carries its own ingest's and dataset's fingerprints."""
    import dagster as dg

    from orchestration.lineage import materialized_in_run

    versions = {v.tags.get("dagster_run_id"): v for v in campaign.versions()}
    fingerprints = set()
    with campaign.instance() as instance:
        for run_id in run_ids:
            ingest = materialized_in_run(instance, dg.AssetKey("raw_playlist_events"), run_id)
            dataset = materialized_in_run(instance, dg.AssetKey("next_track_dataset"), run_id)
            version = versions.get(run_id)
            if version is None:
                return False
            if version.tags["raw_fingerprint"] != ingest["raw_fingerprint"]:
                return False
            if version.tags["data_fingerprint"] != dataset["fingerprint"]:
                return False
            fingerprints.add(ingest["raw_fingerprint"])
    return len(fingerprints) == len(run_ids)


def as_run(playlists: int) -> int:
    """`make run --playlists N` with the small grid merged into its run config."""
    import orchestration.run as run

    make_config = run.run_config

    def with_small_grid(args: argparse.Namespace) -> dict:
        config = make_config(args)
        config["ops"].update(SMALL_GRID)
        return config

    run.run_config = with_small_grid
    return run.main(["--playlists", str(playlists)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--playlists", type=int, default=400)
    parser.add_argument("--big-playlists", type=int, default=100_000, help="the ingest kill")
    parser.add_argument("--keep-data", action="store_true")
    parser.add_argument("--as-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.as_run:
        return as_run(args.playlists)

    data_dir = Path(os.environ.get("NEXT_TRACK_DATA_DIR", REPO_ROOT / "data"))
    root = data_dir / "fault-campaign" / time.strftime("%Y%m%d-%H%M%S")
    campaign = Campaign(root, args.playlists)
    started = time.monotonic()
    cases = [*run_campaign(campaign, args.big_playlists), ui_case(campaign)]
    for case in cases:
        print(f"{'pass' if case.passed else 'FAIL':<5} {case.name:<36} {case.seconds:7.0f} s")
        for check, ok in case.checks.items():
            print(f"        {'ok ' if ok else 'NO '} {check}")
        for note in case.notes:
            print(f"        ({note})")
    print(f"campaign took {time.monotonic() - started:.0f} s; logs in {root}")
    (root / "fault_campaign.json").write_text(json.dumps([asdict(c) for c in cases], indent=2))
    if not args.keep_data:
        shutil.rmtree(root / "data", ignore_errors=True)
    return 0 if all(case.passed for case in cases) else 1


if __name__ == "__main__":
    raise SystemExit(main())
