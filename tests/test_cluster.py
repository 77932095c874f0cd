"""The cluster profile for real: PostgreSQL, Redis, SeaweedFS, an MLflow server, Dagster's daemon
and webserver and two Celery workers that share no folder, started here on 127.0.0.1 (as
`make cluster-up` does) and stopped by their process groups at the end.

The next-track pipeline runs on yes_small through `make run PROFILE=cluster`'s entry point; then
again with the worker running the Word2Vec fit killed (kill -9) mid-fit; then a two-step probe
shows that a hand-over through a worker's own folder does not reach the other worker (the
negative control: the test can fail), while through the bucket it does."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import boto3
import botocore
import dagster as dg
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from dagster._core.instance.ref import InstanceRef

from tests.conftest import REPO_ROOT, SHARED_DATA

pytestmark = pytest.mark.slow

GRID = REPO_ROOT / "tests" / "one_unit_per_family.yaml"
POOLS = ("duckdb_warehouse", "model_registry")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, prepared_dbt_project):
    from orchestration.cluster.lifecycle import down, up
    from orchestration.cluster.services import processes_of

    # PostgreSQL runs as its own account: a folder it can reach (pytest's are the owner's only).
    folder = Path(tempfile.mkdtemp(prefix="next-track-cluster-"))
    folder.chmod(0o755)
    state = up(folder, workers=2)
    environment = state.environment()
    with pytest.MonkeyPatch.context() as patch:
        for name in ("NEXT_TRACK_PG_PASSWORD", "NEXT_TRACK_PG_PORT", "NEXT_TRACK_CELERY_BROKER",
                     "NEXT_TRACK_CELERY_BACKEND", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                     "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):  # fmt: skip
            patch.setenv(name, environment[name])
        instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(state.dagster_home)))
        try:
            yield state, instance
        finally:
            instance.dispose()
            stopped = down(folder)
    assert "postgres" in stopped and "worker-1" in stopped
    assert processes_of(str(folder)) == []  # every process it started is gone
    shutil.rmtree(folder, ignore_errors=True)


def bucket_keys(state, prefix: str) -> set[str]:
    from orchestration.cluster.services import s3_client

    pages = (
        s3_client(state)
        .get_paginator("list_objects_v2")
        .paginate(Bucket="next-track", Prefix=prefix)
    )
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def start_run(state, submitter_data: Path) -> subprocess.Popen:
    """`make run PROFILE=cluster SOURCE=yes_small CONFIG=one_unit_per_family.yaml` (the
    cluster's environment comes from its cluster.env), from a data folder of its own."""
    environment = {**os.environ, "NEXT_TRACK_DATA_DIR": str(submitter_data)}
    return subprocess.Popen(
        ["make", "-s", "-C", str(REPO_ROOT), "run", "PROFILE=cluster",
         f"CLUSTER_DIR={state.folder}", f"SOURCE={SHARED_DATA / 'yes_small'}", f"CONFIG={GRID}"],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def latest_run_id(instance) -> str:
    return instance.get_runs(limit=1)[0].run_id


def workers_of_steps(instance, run_id: str) -> dict[str, list[str]]:
    """step key -> the Celery workers that took it, in order (dagster-celery's engine event)."""
    taken: dict[str, list[str]] = {}
    for record in instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ENGINE_EVENT
    ).records:
        entry = record.event_log_entry
        metadata = entry.dagster_event.event_specific_data.metadata
        if "Celery worker" in metadata:
            taken.setdefault(entry.step_key, []).append(
                metadata["Celery worker"].value.split("@")[0]
            )
    return taken


@pytest.fixture(scope="module")
def pipeline_run(cluster, tmp_path_factory):
    state, instance = cluster
    submitter_data = tmp_path_factory.mktemp("submitter") / "data"
    process = start_run(state, submitter_data)
    out, err = process.communicate(timeout=900)
    assert process.returncode == 0, why_the_run_failed(state, instance, out, err)
    return latest_run_id(instance), out, err, submitter_data


def why_the_run_failed(state, instance, out: str, err: str) -> str:
    """The console's ends, the run's last run-level events (what failed it from outside says
    so there, an engine error with its stack) and the services' log lines that speak of
    failures."""
    runs = instance.get_runs(limit=1)  # the newest; none if the first make run failed early
    events = [] if runs else ["none: no run was submitted"]
    entries = instance.all_logs(runs[0].run_id) if runs else []
    for entry in entries:
        event = entry.dagster_event
        if event is not None and entry.step_key is None:
            error = getattr(event.event_specific_data, "error", None)
            events.append(f"{event.event_type_value}: {event.message}")
            events.extend([error.to_string()] if error else [])
    words = ("error", "fail", "exit", "heartbeat", "dead", "kill", "traceback", "signal")
    lines = [
        f"{log.name}: {line}"
        for log in sorted((Path(state.folder) / "logs").glob("*.log"))
        for line in log.read_text(errors="replace").splitlines()
        if any(word in line.lower() for word in words)
    ]
    consoles = [f"stdout:\n{out[-1500:]}", f"stderr:\n{err[-1500:]}"]
    return "\n".join([*consoles, "run events:", *events[-12:], "service logs:", *lines[-40:]])


def test_the_pipeline_runs_on_the_cluster_with_the_embedded_console(pipeline_run):
    _, out, err, _ = pipeline_run
    assert "uploaded" in out and "s3://next-track/sources/" in out
    assert "start  track_embeddings/fit[" in err and "done   next_track_selected_model" in err
    assert "registered next-track version 1 as @champion" in out
    assert "s3://next-track/serving/track_recommendations.duckdb" in out


def test_fit_steps_ran_on_two_workers_and_inputs_crossed_between_them(cluster, pipeline_run):
    _, instance = cluster
    run_id = pipeline_run[0]
    taken = workers_of_steps(instance, run_id)
    fits = {workers[-1] for step, workers in taken.items() if "__fit[" in step}
    assert fits == {"worker-1", "worker-2"}, taken
    crossed = []
    for record in instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.LOADED_INPUT
    ).records:
        entry = record.event_log_entry
        upstream = entry.dagster_event.event_specific_data.upstream_step_key
        if upstream and taken[upstream][-1] != taken[entry.step_key][-1]:
            crossed.append((upstream, entry.step_key))
    assert crossed, taken
    # The grid's priority reached Celery: Word2Vec's fit steps carry a higher one.
    run = instance.get_run_by_id(run_id)
    plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    priority = {
        step.key: int(step.tags["dagster-celery/priority"])
        for step in plan.steps
        if step.tags and "dagster-celery/priority" in step.tags
    }
    fit_priority = {key.split(".")[0]: p for key, p in priority.items() if "__fit" in key}
    assert fit_priority["track_embeddings"] > fit_priority["sequential_rules_candidates"]
    # The steps' own metadata names their workers too.
    selection = instance.get_latest_materialization_event(
        dg.AssetKey("next_track_candidate_metrics")
    )
    worker = selection.asset_materialization.metadata["worker"].value
    assert worker == taken["next_track_candidate_metrics"][-1]


def test_every_hand_over_is_in_the_bucket_and_nothing_on_the_submitting_side(cluster, pipeline_run):
    state, instance = cluster
    run_id, _, _, submitter_data = pipeline_run
    handed = [
        record.event_log_entry.dagster_event.event_specific_data.metadata["path"].value
        for record in instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.HANDLED_OUTPUT
        ).records
    ]
    assert len(handed) >= 14
    keys = bucket_keys(state, f"runs/{run_id}/")
    for url in handed:
        assert url.startswith("s3://next-track/") and url.removeprefix("s3://next-track/") in keys
    for artifact in ("raw/playlist_events.parquet", "warehouse.duckdb", "dataset/dataset.json",
                     "bundle/bundle.json", "plots/validation_hit_rate_at_k.png",
                     "serving/track_recommendations.duckdb"):  # fmt: skip
        assert f"runs/{run_id}/{artifact}" in keys
    assert any(k.startswith(f"runs/{run_id}/candidates/") for k in keys)
    assert {"warehouse.duckdb", "raw/playlist_events.parquet"} <= bucket_keys(state, "")
    # The submitting side wrote nothing any worker read: no run folder, no warehouse.
    written = (
        [p for p in submitter_data.rglob("*") if p.is_file()] if submitter_data.exists() else []
    )
    assert not any("runs" in p.parts or p.suffix == ".duckdb" for p in written), written


def test_mlflow_runs_and_the_champion_live_on_the_server_and_in_the_bucket(cluster, pipeline_run):
    from mlflow import MlflowClient

    state, _ = cluster
    run_id = pipeline_run[0]
    client = MlflowClient(state.mlflow_url)
    experiment = client.get_experiment_by_name("next-track")
    parents = client.search_runs(
        [experiment.experiment_id], f"tags.dagster_run_id = '{run_id}' and tags.kind = 'pipeline'"
    )
    assert len(parents) == 1
    children = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'"
    )
    candidates = [c for c in children if c.data.tags.get("kind") in ("candidate", "baseline")]
    assert len(candidates) >= 6
    assert {c.data.tags["worker"] for c in candidates} == {"worker-1", "worker-2"}
    champion = client.get_model_version_by_alias("next-track", "champion")
    assert champion.run_id in {c.info.run_id for c in children}
    # The server proxies mlflow-artifacts:/ to s3://next-track/mlflow/
    uri = client.get_model_version_download_uri("next-track", champion.version)
    assert uri.startswith("mlflow-artifacts:/"), uri
    files = bucket_keys(state, "mlflow/" + uri.removeprefix("mlflow-artifacts:/").strip("/"))
    assert any(k.endswith("/MLmodel") for k in files), (uri, sorted(files))
    assert any("/bundle/" in k for k in files)


def test_no_pool_slot_is_left_held(cluster, pipeline_run):
    _, instance = cluster
    for pool in POOLS:
        info = instance.event_log_storage.get_concurrency_info(pool)
        assert info.active_slot_count == 0, (pool, info)


def test_a_worker_killed_mid_fit_hands_its_step_to_another_and_the_run_succeeds(
    cluster, pipeline_run, tmp_path
):
    state, instance = cluster
    before = latest_run_id(instance)
    process = start_run(state, tmp_path / "data")
    fit, victim = None, None
    deadline = time.monotonic() + 600
    while victim is None and time.monotonic() < deadline:
        run_id = latest_run_id(instance)
        if run_id != before:
            for step, workers in workers_of_steps(instance, run_id).items():
                if "track_embeddings__fit[" in step:
                    fit, victim = step, workers[0]
        time.sleep(0.2)
    assert victim is not None, "the Word2Vec fit never started"
    time.sleep(1.0)  # inside the fit (Word2Vec trains for several seconds here)
    from orchestration.processes import all_pids, parent_of

    main = state.pids[victim]
    (child,) = [pid for pid in all_pids() if parent_of(pid) == main]
    os.kill(child, signal.SIGKILL)
    out, err = process.communicate(timeout=900)
    assert process.returncode == 0, why_the_run_failed(state, instance, out, err)
    taken = workers_of_steps(instance, run_id)[fit]
    assert len(taken) == 2, taken  # the killed attempt, then the redelivered one
    log = (Path(state.folder) / "logs" / f"{victim}.log").read_text()
    assert f"pid:{child} exited with 'signal 9 (SIGKILL)'" in log
    assert "registered next-track version 2" in out
    for pool in POOLS:
        assert instance.event_log_storage.get_concurrency_info(pool).active_slot_count == 0


def test_a_hand_over_through_a_private_folder_does_not_reach_another_worker(cluster):
    """The negative control: the same two steps, pinned to the two workers, fail through a
    worker's own data folder and succeed through the bucket."""
    from tests.cluster_probe import reconstructable_probe

    _, instance = cluster
    private = dg.execute_job(
        reconstructable_probe("private_folders"), instance=instance, raise_on_error=False
    )
    assert not private.success
    (failure,) = [e for e in private.all_events if e.is_step_failure]
    assert failure.step_key == "consume"
    assert "not found: materialize" in failure.event_specific_data.error.to_string()
    with dg.execute_job(reconstructable_probe("bucket"), instance=instance) as shared:
        assert shared.success
        handed = shared.output_for_node("consume")
    assert handed == {"written_by": "worker-1", "read_by": "worker-2"}


def test_services_refuse_anonymous_and_wrong_credentials(cluster):
    import psycopg2
    import redis

    state, _ = cluster
    anonymous = boto3.client(
        "s3", endpoint_url=state.s3_endpoint, config=Config(signature_version=UNSIGNED),
        region_name="us-east-1",
    )  # fmt: skip
    for attempt in (
        lambda: anonymous.list_objects_v2(Bucket="next-track"),
        lambda: anonymous.put_object(Bucket="next-track", Key="x", Body=b"x"),
    ):
        with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
            attempt()
    wrong = state.database_url("dagster").replace(state.postgres_password, "wrong-password")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(wrong, connect_timeout=5)
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=state.ports["redis"], password="wrong").ping()
    assert json.loads((Path(state.folder) / "state.json").read_text())["postgres_password"]
    assert (Path(state.folder) / "state.json").stat().st_mode & 0o077 == 0  # owner only
