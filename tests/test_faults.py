"""Faults at run time (issue 8): a failed or killed dbt build leaves the last good warehouse; a
killed run neither blocks the platform nor leaves MLflow runs RUNNING; overlapping runs each train
and register on the data they ingested; the champion survives registry errors and moves on a new
data lineage; a full data folder stops a run, naming the folder.

The in-process tests use the session's data folder and never register a model. The platform
tests run `make run`-like processes (tests/pipeline_process.py) on a DAGSTER_HOME of their own
with the project's dagster.yaml (pools of one slot), their own data folder and MLflow store, and
kill them with SIGKILL to the whole process group.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, ErrorCode

from ml.registry import (
    CHALLENGER,
    CHAMPION,
    current_champion,
    decide_promotion,
    end_orphaned_runs,
    ensure_experiment,
)
from ml.warehouse import read_table_rows
from tests.pipeline_process import TAG

REPO_ROOT = Path(__file__).resolve().parents[1]
JOB = "next_track_pipeline"
MODEL = "next-track"
PUBLISHED_TABLES = ["playlist_splits", "dim_tracks", "dataset_stats", "next_track_build"]
SMALL_SYNTHETIC = {
    "raw_playlist_events": {"config": {"synthetic_playlists": 300, "synthetic_seed": 5}}
}
NO_FREE_SPACE = {"storage": {"config": {"min_free_mb": 10**9}}}  # more than any disk has


# In process, on the session's data folder --------------------------------------------------


def asset_keys(*names: str) -> list[dg.AssetKey]:
    """Asset keys by name; "dbt" stands for every dbt model (one step builds them all)."""
    from orchestration.assets.dbt import next_track_dbt_models

    keys = []
    for name in names:
        keys += list(next_track_dbt_models.keys) if name == "dbt" else [dg.AssetKey(name)]
    return keys


def run_assets(names: list[str], ops: dict, resources: dict | None = None):
    from orchestration.definitions import defs

    return defs.resolve_job_def(JOB).execute_in_process(
        run_config={"ops": ops, "resources": resources or {}},
        instance=dg.DagsterInstance.get(),
        asset_selection=asset_keys(*names),
        raise_on_error=False,
    )


def step_failure(result) -> tuple[str, str]:
    failure = next(e for e in result.all_events if e.is_step_failure)
    return failure.step_key, failure.event_specific_data.error.message


def published_tables(warehouse: Path) -> dict[str, list]:
    return {t: sorted(read_table_rows(warehouse, t), key=repr) for t in PUBLISHED_TABLES}


def published_state() -> dict:
    """The session's published warehouse tables and the published raw file's digest."""
    from orchestration.settings import RAW_EVENTS_PATH, WAREHOUSE_PATH

    raw = hashlib.sha256(RAW_EVENTS_PATH.read_bytes()).hexdigest()
    return {**published_tables(WAREHOUSE_PATH), "raw": raw}


@pytest.fixture(scope="module")
def good_build(prepared_dbt_project) -> str:
    """A published warehouse and the dataset encoded from it; the run's id."""
    result = run_assets(["raw_playlist_events", "dbt", "next_track_dataset"], SMALL_SYNTHETIC)
    assert result.success
    return result.run_id


def test_a_failed_build_names_its_cause_and_keeps_the_last_good_warehouse(good_build, tmp_path):
    before = published_state()
    assert before["next_track_build"][0]["build_id"] == good_build
    # 200 playlists of 2 tracks: none has the 3 a sequence needs, so the train split is empty.
    rows = 400
    short = tmp_path / "short_playlists.parquet"
    pq.write_table(
        pa.table(
            {
                "row_id": pa.array(range(rows), pa.int64()),
                "user_id": ["u1"] * rows,
                "artist": [f"artist {i}" for i in range(rows)],
                "track": [f"track {i}" for i in range(rows)],
                "playlist": [f"playlist {i // 2}" for i in range(rows)],
            }
        ),
        short,
    )
    source = {"raw_playlist_events": {"config": {"source": str(short)}}}
    result = run_assets(["raw_playlist_events", "dbt"], source)
    step, message = step_failure(result)
    assert step == "next_track_dbt_models"
    assert "nothing was published" in message
    assert "test expression_is_true_dataset_stats" in message
    assert "(requires: " in message and "playlists_train > 0" in message
    assert "playlists_clean 200, playlists_too_short 200, playlists 0" in message
    assert "NoneType" not in message
    after = published_state()
    assert {t: after[t] for t in PUBLISHED_TABLES} == {t: before[t] for t in PUBLISHED_TABLES}
    # The failed command's dbt target folder stays, for its dbt.log, and the failure names it.
    failure = next(e for e in result.all_events if e.is_step_failure)
    target = Path(failure.event_specific_data.user_failure_data.metadata["dbt_target"].value)
    assert target.name.startswith(f"next_track_dbt_models-{result.run_id[:7]}-")
    assert (target / "dbt.log").is_file()
    shutil.rmtree(target)


def test_a_build_out_of_duckdbs_memory_names_the_limit_to_raise(good_build, monkeypatch):
    """DuckDB cannot spill a playlist's list of tracks: past its memory limit the model fails,
    and the message says which variable raises the limit, and that nothing was published."""
    before = published_state()
    monkeypatch.setenv("NEXT_TRACK_DUCKDB_MEMORY_LIMIT", "2MB")
    result = run_assets(["raw_playlist_events", "dbt"], SMALL_SYNTHETIC)
    step, message = step_failure(result)
    assert step == "next_track_dbt_models"
    assert "Out of Memory Error" in message and "nothing was published" in message
    assert "NEXT_TRACK_DUCKDB_MEMORY_LIMIT (2MB) is too small for this data" in message
    after = published_state()
    assert {t: after[t] for t in PUBLISHED_TABLES} == {t: before[t] for t in PUBLISHED_TABLES}


@pytest.mark.parametrize(
    ("names", "step"),
    [
        (["raw_playlist_events"], "raw_playlist_events"),
        (["dbt"], "next_track_dbt_models"),
        (["next_track_dataset"], "next_track_dataset"),
        # a grid reads its rung (nothing to screen on this data) and fails at its first fit
        (["rung_references", "track_embeddings"], "track_embeddings.track_embeddings__fit"),
    ],
    ids=["ingest", "dbt", "dataset", "candidates"],
)
def test_a_full_data_folder_stops_each_writing_step_naming_the_folder(good_build, names, step):
    from orchestration.settings import RUNS_DIR

    before = published_state()
    result = run_assets(names, SMALL_SYNTHETIC, NO_FREE_SPACE)
    failed_step, message = step_failure(result)
    assert failed_step.startswith(step)
    assert f"{RUNS_DIR / result.run_id}: only " in message
    assert "NEXT_TRACK_MIN_FREE_MB" in message and "before writing anything" in message
    assert published_state() == before


# Registry and store rules, without a pipeline --------------------------------------------------


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory) -> str:
    """One MLflow store for the registry tests (creating one takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


def test_only_a_missing_model_or_alias_means_no_champion(mlflow_store, monkeypatch):
    client = MlflowClient(mlflow_store)
    assert current_champion(client, "no-such-model") is None
    client.create_registered_model("no-alias-yet")
    assert current_champion(client, "no-alias-yet") is None

    def registry_fails(*args, **kwargs):
        raise MlflowException(  # says "not found", but no model or alias is missing
            "(sqlite3.OperationalError) database is locked; registry not found in cache",
            error_code=ErrorCode.Name(INTERNAL_ERROR),
        )

    monkeypatch.setattr(client, "get_model_version_by_alias", registry_fails)
    with pytest.raises(MlflowException, match="database is locked"):
        current_champion(client, "no-alias-yet")


def test_a_new_data_lineage_replaces_the_champion_and_says_so():
    promotion = decide_promotion(0.2, "yes_small", "3", "synthetic(playlists=400, seed=42)", 0.0)
    assert promotion.alias == CHAMPION
    assert promotion.reason.startswith("new data lineage: champion v3 was trained on ")
    assert "beats" not in promotion.reason
    same = decide_promotion(0.2, "yes_small", "3", "yes_small", 0.25)
    assert same.alias == CHALLENGER and same.reason.startswith("does not beat champion v3")


def test_an_experiment_another_run_created_meanwhile_is_used(mlflow_store, tmp_path, monkeypatch):
    artifacts = (tmp_path / "artifacts").as_uri()
    created = ensure_experiment(mlflow_store, "created-meanwhile", artifacts)
    # The lookup sees no experiment; by the time this run creates it, another run has.
    lookup, calls = MlflowClient.get_experiment_by_name, []

    def lookup_too_early(self, name):
        calls.append(name)
        return None if len(calls) == 1 else lookup(self, name)

    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", lookup_too_early)
    assert ensure_experiment(mlflow_store, "created-meanwhile", artifacts) == created


def at_the_same_instant(statements: list[str], root: Path, env: dict[str, str]) -> list[str]:
    """Each of ``statements`` run in a process of its own, all released at once; their outputs'
    last lines (asserting each process succeeded)."""
    ready = root / "ready"
    ready.mkdir()
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from orchestration.resources import MlflowResource\n"
        "from orchestration.instance import open_instance\n"
        "ready, n = Path(sys.argv[1]), int(sys.argv[2])\n"
        "(ready / sys.argv[3]).touch()\n"
        "while len(list(ready.iterdir())) < n:\n"
        "    time.sleep(0.005)\n"
        "exec(sys.argv[4])\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(ready), str(len(statements)), str(i), statement],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, statement in enumerate(statements)
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0] * len(processes), [
        e[-2000:] for _, e in outputs
    ]
    return [out.strip().splitlines()[-1] for out, _ in outputs]


def test_first_runs_at_once_create_the_dagster_and_mlflow_stores_once(tmp_path):
    """A fresh DAGSTER_HOME or MLflow sqlite store opened by several processes at the same instant
    breaks all but one ("table runs already exists", two alembic heads); `make run` and the
    MLflow resource serialise the first opening."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    uri = f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    statement = (
        f"open_instance().get_runs(); print(MlflowResource(tracking_uri='{uri}')"
        ".experiment_id('next-track'))"
    )
    env = {"DAGSTER_HOME": str(home), "NEXT_TRACK_DATA_DIR": str(tmp_path)}
    assert len(set(at_the_same_instant([statement] * 2, tmp_path, env))) == 1  # one experiment


def test_a_fresh_mlflow_store_opened_for_two_experiments_and_a_sensor_at_once(tmp_path):
    """Steps of two experiments, and the dead-run sensor's look at every experiment, opening a
    fresh sqlite store at the same instant: each opening waits for the store's tables, so none
    fails with "table ... already exists"."""
    resource = f"MlflowResource(tracking_uri='sqlite:///{tmp_path}/mlflow/mlflow.db')"
    statements = [
        f"print({resource}.experiment_id('next-track'))",
        f"print({resource}.experiment_id('user-items'))",
        f"print(len({resource}.client().search_experiments()))",
    ]
    env = {"NEXT_TRACK_DATA_DIR": str(tmp_path)}
    next_track, user_items, _ = at_the_same_instant(statements, tmp_path, env)
    assert next_track != user_items


def test_orphaned_mlflow_runs_of_finished_dagster_runs_end_as_failed(mlflow_store):
    client = MlflowClient(mlflow_store)
    experiment = client.create_experiment("orphans")
    dead = client.create_run(experiment, tags={"dagster_run_id": "dead"}).info.run_id
    live = client.create_run(experiment, tags={"dagster_run_id": "live"}).info.run_id
    ended = end_orphaned_runs(client, [experiment], lambda run: run == "live")
    assert ended == [dead]
    assert client.get_run(dead).info.status == "FAILED"
    assert client.get_run(live).info.status == "RUNNING"


# A platform of its own: runs in processes, killed with SIGKILL --------------------------------


@dataclass
class Platform:
    """A DAGSTER_HOME with the project's dagster.yaml, a data folder and an MLflow store."""

    root: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def mlflow_uri(self) -> str:
        return f"sqlite:///{self.data}/mlflow/mlflow.db"

    @cached_property
    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.home))

    @cached_property
    def client(self) -> MlflowClient:
        return MlflowClient(self.mlflow_uri)

    def start(self, name: str, *args: str) -> None:
        """A `make run`-like process in its own process group, its output in <name>.log."""
        env = {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "NEXT_TRACK_DATA_DIR": str(self.data),
            "MLFLOW_TRACKING_URI": self.mlflow_uri,
            # Prune every other finished run's folder, so pruning meets runs still in progress.
            "NEXT_TRACK_KEEP_RUNS": "1",
        }
        with self.log_path(name).open("w") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "tests.pipeline_process", "--name", name, *args],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log_path(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def log(self, name: str) -> str:
        return self.log_path(name).read_text(errors="replace")

    def run(self, name: str) -> dg.DagsterRun:
        runs = self.instance.get_runs(filters=dg.RunsFilter(tags={TAG: name}))
        assert len(runs) == 1, f"{len(runs)} runs tagged {name}"
        return runs[0]

    def wait(self, what: str, condition: Callable[[], bool], timeout: float, *running: str):
        """Poll ``condition``; fail early, with its log, if a process of ``running`` exits."""
        deadline = time.monotonic() + timeout
        while not condition():
            for name in running:
                assert self.processes[name].poll() is None, (
                    f"{name} exited while waiting for {what}:\n{self.log(name)[-4000:]}"
                )
            assert time.monotonic() < deadline, f"no {what} after {timeout} s"
            time.sleep(0.2)

    def kill(self, name: str) -> None:
        """SIGKILL to the whole process group (the run and its dbt), as `kill -9 -<pgid>`."""
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait(timeout=30)

    def stop_all(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is None:
                self.kill(name)


def dbt_builds_in_group(group: int) -> bool:
    """Whether a `dbt build` process runs in process group ``group``."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            process_group = int(stat.read_text().rsplit(")", 1)[1].split()[2])
            command = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
        if (
            process_group == group
            and b"build" in command
            and any(Path(arg.decode(errors="replace")).name == "dbt" for arg in command)
        ):
            return True
    return False


def building(platform: Platform, name: str) -> bool:
    """Whether run ``name``'s dbt is running and has begun writing its own build file."""
    if not dbt_builds_in_group(platform.processes[name].pid):
        return False
    runs = platform.instance.get_runs(filters=dg.RunsFilter(tags={TAG: name}))
    return bool(runs) and (platform.data / "runs" / runs[0].run_id / "warehouse.duckdb").exists()


def pool_holders(platform: Platform, pool: str) -> set[str]:
    return platform.instance.event_log_storage.get_concurrency_info(pool).active_run_ids


def dead_pid() -> int:
    """The id of a process that has exited (a killed ingest's, for its temporary file)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def write_other_catalogue(path: Path) -> None:
    """A canonical Parquet file of synthetic playlists whose artists all carry another name: no
    track in common with the synthetic data's catalogue."""
    from ml.sources import ingest
    from ml.sources.synthetic import SyntheticSpec

    ingest(None, path, synthetic=SyntheticSpec(playlists=450, seed=42))
    table = pq.read_table(path)
    artist = table["artist"]
    blank = pc.equal(pc.utf8_trim_whitespace(artist), "")  # stays blank, dropped as before
    renamed = pc.if_else(blank, artist, pc.binary_join_element_wise("other ", artist, ""))
    column = table.schema.get_field_index("artist")
    pq.write_table(table.set_column(column, "artist", renamed), path)


@dataclass
class Scenario:
    """What the platform went through, observed at each point."""

    platform: Platform
    paused_version: str = ""
    paused: dict = field(default_factory=dict)  # registration paused: aliases, run statuses
    warehouse_before_kill: dict = field(default_factory=dict)
    warehouse_after_kill: dict = field(default_factory=dict)
    holders_before_sweep: dict[str, set[str]] = field(default_factory=dict)
    sweep: str = ""
    registry_holders_after_sweep: set[str] = field(default_factory=set)
    stale_temporary: Path | None = None
    seconds_to_success: float = 0.0


SYNTHETIC = ["--playlists", "400", "--seed", "42"]
OVERLAPPING = ("E", "F")  # E on synthetic data, F on a Parquet file of another catalogue
WAIT_FOR_REGISTRY = "Step blocked by limit for pool model_registry: waiting for the run"
SUCCESS_BOUND_SECONDS = 240


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, prepared_dbt_project):
    """C is held in registration once its model version exists; B is killed while dbt builds;
    then E and F start together (different data), wait for the registry pool C holds, C is
    killed and the dead-run sensor ticks; E and F must then both succeed."""
    from orchestration.resources import MlflowResource
    from orchestration.run_health import dead_run_sensor

    platform = Platform(tmp_path_factory.mktemp("platform"))
    platform.home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", platform.home / "dagster.yaml")
    seen = Scenario(platform)
    marker = platform.root / "version_created"
    try:
        platform.start("C", *SYNTHETIC, "--pause-in-registration", str(marker))
        warehouse = platform.data / "warehouse.duckdb"
        platform.wait("published warehouse", warehouse.exists, 400, "C")
        seen.warehouse_before_kill = published_tables(warehouse)

        platform.start("B", "--playlists", "300", "--seed", "11")
        platform.wait("dbt writing its build", lambda: building(platform, "B"), 300, "B")
        platform.kill("B")
        seen.warehouse_after_kill = published_tables(warehouse)

        platform.wait("model version", marker.exists, 400, "C")
        seen.paused_version = marker.read_text()
        version = platform.client.get_model_version(MODEL, seen.paused_version)
        selected_run = platform.client.get_run(version.run_id)
        parent = platform.client.get_run(selected_run.data.tags["mlflow.parentRunId"])
        seen.paused = {
            "aliases": list(version.aliases),
            "selected_run": (version.run_id, selected_run.info.status),
            "parent_run": (parent.info.run_id, parent.info.status),
        }
        seen.holders_before_sweep = {
            pool: pool_holders(platform, pool) for pool in ("duckdb_warehouse", "model_registry")
        }
        # What a killed ingest of B's would have left in B's folder (its pid is gone).
        raw = platform.data / "runs" / platform.run("B").run_id / "raw"
        seen.stale_temporary = raw / f".playlist_events.parquet.{dead_pid()}.tmp"
        seen.stale_temporary.write_bytes(b"PAR1 half written")

        other_catalogue = platform.root / "other_catalogue.parquet"
        write_other_catalogue(other_catalogue)
        platform.start("E", *SYNTHETIC)
        platform.start("F", "--source", str(other_catalogue))
        platform.wait(
            "E and F waiting for the registry",
            lambda: all(WAIT_FOR_REGISTRY in platform.log(n) for n in OVERLAPPING),
            600,
            *OVERLAPPING,
        )
        platform.kill("C")
        mlflow = MlflowResource(tracking_uri=platform.mlflow_uri)
        context = dg.build_sensor_context(instance=platform.instance, resources={"mlflow": mlflow})
        seen.sweep = str(dead_run_sensor(context).skip_message)
        seen.registry_holders_after_sweep = pool_holders(platform, "model_registry")
        swept = time.monotonic()
        for name in OVERLAPPING:
            platform.processes[name].wait(timeout=SUCCESS_BOUND_SECONDS)
        seen.seconds_to_success = time.monotonic() - swept
        yield seen
    finally:
        platform.stop_all()
        if "instance" in platform.__dict__:
            platform.instance.dispose()


def test_a_build_killed_in_dbt_leaves_the_last_good_warehouse(scenario):
    platform = scenario.platform
    assert scenario.warehouse_before_kill["next_track_build"][0]["build_id"] == (
        platform.run("C").run_id
    )
    assert scenario.warehouse_after_kill == scenario.warehouse_before_kill
    killed = platform.run("B")
    assert killed.status == dg.DagsterRunStatus.FAILURE  # by the next runs' check at start
    assert killed.run_id in scenario.holders_before_sweep["duckdb_warehouse"]


def test_killed_runs_are_failed_their_pools_freed_and_waiting_runs_say_so(scenario):
    platform = scenario.platform
    paused = platform.run("C")
    assert paused.run_id in scenario.holders_before_sweep["model_registry"]
    assert "marked 1 dead runs failed" in scenario.sweep
    assert paused.run_id not in scenario.registry_holders_after_sweep
    assert paused.status == dg.DagsterRunStatus.FAILURE
    failure = platform.instance.all_logs(paused.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert "is gone (killed?)" in failure[-1].message
    for name in OVERLAPPING:
        # The console of a waiting `make run` says what it waits for, at INFO (the progress
        # console names the level of WARNING and above only), naming the waiting step.
        line = next(ln for ln in platform.log(name).splitlines() if WAIT_FOR_REGISTRY in ln)
        assert "next_track_registered_model: Step blocked" in line
        assert not any(level in line for level in ("DEBUG", "WARNING", "ERROR"))
        assert platform.processes[name].returncode == 0, platform.log(name)[-4000:]
        assert platform.run(name).status == dg.DagsterRunStatus.SUCCESS
    assert scenario.seconds_to_success < SUCCESS_BOUND_SECONDS


def test_a_registration_killed_after_its_version_exists_leaves_nothing_running(scenario):
    platform, client = scenario.platform, scenario.platform.client
    selected_run, status = scenario.paused["selected_run"]
    parent_run, parent_status = scenario.paused["parent_run"]
    assert scenario.paused["aliases"] == [] and (status, parent_status) == ("RUNNING", "RUNNING")
    assert "ended 2 orphaned MLflow runs" in scenario.sweep
    assert client.get_run(selected_run).info.status == "FAILED"
    assert client.get_run(parent_run).info.status == "FAILED"
    # The half-logged version never became champion; a later, complete one did.
    assert client.get_model_version(MODEL, scenario.paused_version).aliases == []
    champion = client.get_model_version_by_alias(MODEL, CHAMPION)
    assert int(champion.version) > int(scenario.paused_version)
    assert champion.tags["dagster_run_id"] in {platform.run(n).run_id for n in OVERLAPPING}


def test_overlapping_runs_each_register_the_data_they_ingested(scenario):
    from orchestration.lineage import materialized_in_run

    platform, client = scenario.platform, scenario.platform.client
    versions = {v.tags.get("dagster_run_id"): v for v in client.search_model_versions()}
    raw_fingerprints = set()
    for name in OVERLAPPING:
        run_id = platform.run(name).run_id
        ingest = materialized_in_run(platform.instance, dg.AssetKey("raw_playlist_events"), run_id)
        dataset = materialized_in_run(platform.instance, dg.AssetKey("next_track_dataset"), run_id)
        version = versions[run_id]
        assert version.tags["raw_fingerprint"] == ingest["raw_fingerprint"], name
        assert dataset["raw_fingerprint"] == ingest["raw_fingerprint"], name
        assert version.tags["data_fingerprint"] == dataset["fingerprint"], name
        assert version.tags["lineage"] == ingest["lineage"], name
        raw_fingerprints.add(ingest["raw_fingerprint"])
    assert len(raw_fingerprints) == 2  # different data, or this would prove nothing
    # The killed ingest's temporary file was swept by the first of them to ingest.
    removed = [
        materialized_in_run(
            platform.instance, dg.AssetKey("raw_playlist_events"), platform.run(n).run_id
        )["stale_temporaries_removed"]
        for n in OVERLAPPING
    ]
    assert sorted(removed) == [0, 1] and not scenario.stale_temporary.exists()


def test_another_catalogue_replaces_the_champion_as_a_new_lineage(scenario):
    client = scenario.platform.client
    champion = client.get_model_version_by_alias(MODEL, CHAMPION)
    first = next(
        v
        for v in client.search_model_versions(f"name='{MODEL}'")
        if v.version not in (champion.version, scenario.paused_version)
    )
    assert first.tags["promotion"] == "no champion yet"
    assert champion.tags["promotion"].startswith(
        f"new data lineage: champion v{first.version} was trained on {first.tags['lineage']!r}"
    )
    assert "beats" not in champion.tags["promotion"]
    # No track in common: the old champion scores nothing on the new test split.
    assert "the old champion scored 0.0 on this split" in champion.tags["promotion"]


def test_a_registry_error_fails_the_registration_and_keeps_the_champion(scenario, monkeypatch):
    """Any MLflow error but "no champion" stops the registration: nothing is registered."""
    import mlflow
    from pydantic import TypeAdapter

    from orchestration.assets.next_track.dataset import DatasetHandle
    from orchestration.assets.next_track.registry import next_track_registered_model
    from orchestration.assets.selection import SelectedModel, Selection
    from orchestration.resources import MlflowResource
    from orchestration.storage import RunStorage

    platform, client = scenario.platform, scenario.platform.client
    champion = client.get_model_version_by_alias(MODEL, CHAMPION)
    handover = platform.data / "runs" / champion.tags["dagster_run_id"] / "handover"
    inputs = {
        name: TypeAdapter(kind).validate_json((handover / f"{asset}.json").read_bytes())
        for name, asset, kind in (
            ("selected", "next_track_selected_model", SelectedModel),
            ("selection", "next_track_candidate_metrics", Selection),
            ("dataset", "next_track_dataset", DatasetHandle),
        )
    }
    versions = len(client.search_model_versions(f"name='{MODEL}'"))

    def registry_fails(*args, **kwargs):
        raise MlflowException("database is locked", error_code=ErrorCode.Name(INTERNAL_ERROR))

    monkeypatch.setattr(MlflowClient, "get_model_version_by_alias", registry_fails)
    resources = {
        "mlflow": MlflowResource(tracking_uri=platform.mlflow_uri),
        "storage": RunStorage(url=platform.data.as_uri()),
    }
    context = dg.build_asset_context(instance=platform.instance, resources=resources)
    try:
        with pytest.raises(MlflowException, match="database is locked"):
            next_track_registered_model(context, **inputs)
    finally:
        mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])  # the session's store again
    monkeypatch.undo()
    assert len(client.search_model_versions(f"name='{MODEL}'")) == versions
    assert client.get_model_version_by_alias(MODEL, CHAMPION).version == champion.version
